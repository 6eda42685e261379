//! The two facts the host needs from the kubeconfig AKS returns: the API
//! server URL and its CA. Credentials in it (a client certificate, a token or
//! a `kubelogin` exec entry) are never read: the host authenticates with the
//! Entra ID token it mints itself.
//!
//! AKS writes its kubeconfigs in one fixed block layout
//! (`clusters: - cluster: certificate-authority-data: ... server: ...`), so a
//! line reader of the first `clusters` entry is enough; no YAML library is
//! pulled into the component for it.

use base64::Engine as _;

/// Server URL and CA PEM of the first cluster of a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    /// `clusters[0].cluster.server`.
    pub server: String,
    /// `clusters[0].cluster.certificate-authority-data`, decoded to PEM.
    pub ca_pem: Option<String>,
}

/// Strip quotes around a scalar.
fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v)
}

/// Read the first cluster's server and CA; `None` when there is no server.
pub fn cluster_access(yaml: &str) -> Option<ClusterAccess> {
    let mut in_clusters = false;
    let mut list_indent: Option<usize> = None;
    let mut entries = 0;
    let mut server = None;
    let mut ca = None;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A top-level key starts or ends the `clusters` list.
        if !line.starts_with([' ', '-']) {
            in_clusters = trimmed.starts_with("clusters:");
            continue;
        }
        if !in_clusters {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with("- ") && *list_indent.get_or_insert(indent) == indent {
            entries += 1;
            if entries > 1 {
                break;
            }
        }
        let item = trimmed.trim_start_matches("- ").trim_start();
        if let Some(v) = item.strip_prefix("server:") {
            server.get_or_insert_with(|| unquote(v).to_string());
        } else if let Some(v) = item.strip_prefix("certificate-authority-data:") {
            ca.get_or_insert_with(|| unquote(v).to_string());
        }
    }
    let server = server.filter(|s| !s.is_empty())?;
    let ca_pem = ca
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|p| p.contains("-----BEGIN CERTIFICATE-----"));
    Some(ClusterAccess { server, ca_pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of a kubeconfig from `listClusterUserCredential` on an
    /// Entra ID cluster (the user entry runs kubelogin; it is ignored).
    const AKS: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJmYWtlCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
    server: https://bpr-k1-dns-1a2b3c4d.hcp.eastus.azmk8s.io:443
  name: bpr-k1
- cluster:
    server: https://other.example:443
  name: other
contexts:
- context:
    cluster: bpr-k1
    user: clusterUser_rg_bpr-k1
  name: bpr-k1
current-context: bpr-k1
kind: Config
users:
- name: clusterUser_rg_bpr-k1
  user:
    exec:
      command: kubelogin
";

    #[test]
    fn the_first_clusters_server_and_ca_are_read_and_users_ignored() {
        let a = cluster_access(AKS).expect("a server");
        assert_eq!(
            a.server,
            "https://bpr-k1-dns-1a2b3c4d.hcp.eastus.azmk8s.io:443"
        );
        assert_eq!(
            a.ca_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")
        );
    }

    #[test]
    fn a_kubeconfig_without_a_server_gives_nothing() {
        assert_eq!(cluster_access("apiVersion: v1\nusers: []\n"), None);
        let quoted = "clusters:\n- cluster:\n    server: \"http://127.0.0.1:26003\"\n  name: x\n";
        assert_eq!(
            cluster_access(quoted).unwrap().server,
            "http://127.0.0.1:26003"
        );
    }
}
