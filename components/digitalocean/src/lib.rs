//! DigitalOcean provider component: priced offers from `/v2/sizes` (with an
//! embedded snapshot as fallback), droplets with an SSH key, cloud-init and a
//! tag-bound cloud firewall, and DOKS clusters whose credentials the host
//! fetches. The host applies the bearer token; this component never sees it.

mod api;
mod codec;
mod leftovers;
mod model;

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/provider",
        with: {
            "blueprint:provider/types@0.1.0": provider_sdk::bindings::blueprint::provider::types,
            "blueprint:provider/log@0.1.0": provider_sdk::bindings::blueprint::provider::log,
            "blueprint:provider/settings@0.1.0": provider_sdk::bindings::blueprint::provider::settings,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
}

use bindings::exports::blueprint::provider::{compute, describe, kubernetes};
use provider_sdk::types::{
    BearerCredential, ClientCertificate, Cluster, ClusterCredentials, ClusterRef, ClusterSpec,
    DeleteStatus, Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, Offer, OfferQuery,
    PortRule, PriceSource, Protocol, ResourceRef,
};
use provider_sdk::{errors, log, settings};
use serde::Deserialize;
use serde_json::{Value, json};

use api::{Api, PER_PAGE};
use model::{
    DropletEnvelope, DropletsPage, KubeClusterEnvelope, KubeClustersPage, KubeCredentials,
    SizesPage,
};

/// Provider name; equals the `.wasm` file stem.
const NAME: &str = "digitalocean";
/// Default droplet image: the current Ubuntu LTS.
const DEFAULT_IMAGE: &str = "ubuntu-24-04-x64";
/// Default DOKS version slug.
const DEFAULT_K8S_VERSION: &str = "latest";
/// The embedded price snapshot (see `snapshot/README.md`).
const SNAPSHOT: &str = include_str!("../snapshot/sizes.json");
/// Name of the snapshot in `price-source.source`.
const SNAPSHOT_SOURCE: &str = "snapshot:digitalocean-2026-11-26";
/// Resource kinds this component returns in `resources`.
const KIND_FIREWALL: &str = "firewall";
const KIND_SSH_KEY: &str = "ssh-key";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        use describe::{Capability, CredentialKind, SettingInfo};
        let setting = |key: &str, description: &str, default: Option<&str>| SettingInfo {
            key: key.into(),
            description: description.into(),
            default_value: default.map(Into::into),
        };
        describe::ProviderInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::ManagedKubernetes,
                Capability::Gpus,
            ],
            credential: CredentialKind::Bearer,
            expected_hosts: vec!["api.digitalocean.com".into()],
            regions: vec![],
            settings: vec![
                setting(
                    "endpoint",
                    "DigitalOcean API base URL (tests point it at a stand-in)",
                    Some(api::DEFAULT_ENDPOINT),
                ),
                setting(
                    "image",
                    "Droplet image slug or id when the instance spec names none",
                    Some(DEFAULT_IMAGE),
                ),
                setting(
                    "kubernetes-version",
                    "DOKS version slug when the cluster spec names none",
                    Some(DEFAULT_K8S_VERSION),
                ),
            ],
        }
    }
}

impl compute::Guest for Component {
    fn list_offers(query: OfferQuery) -> Result<Vec<Offer>, Error> {
        let api = Api::from_settings();
        match live_sizes(&api) {
            Ok(sizes) => {
                let source = PriceSource {
                    source: api.url("/v2/sizes"),
                    observed_at: provider_sdk::time::now_unix(),
                    from_snapshot: false,
                };
                Ok(model::offers_from_sizes(&sizes, &query.regions, &source))
            }
            Err(e) => {
                log::warn(&format!(
                    "reading /v2/sizes failed, answering from the embedded snapshot {SNAPSHOT_SOURCE}: {}",
                    errors::message(&e)
                ));
                snapshot_offers(&query.regions)
            }
        }
    }

    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        create_instance(&Api::from_settings(), spec)
    }

    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        let api = Api::from_settings();
        let id = droplet_id(&target.id)?;
        let env: DropletEnvelope = api.get_json(
            &format!("/v2/droplets/{id}"),
            &format!("reading droplet {id}"),
        )?;
        Ok(model::instance_from_droplet(&env.droplet, target.resources))
    }

    fn delete_instance(target: InstanceRef) -> Result<DeleteStatus, Error> {
        delete_instance(&Api::from_settings(), target)
    }

    fn list_instances(query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let api = Api::from_settings();
        let wanted: Vec<String> = query
            .labels
            .iter()
            .map(|(k, v)| model::label_tag(k, v))
            .collect::<Result<_, _>>()?;
        // DigitalOcean filters by one tag; the deployment label is the most
        // selective, the others are checked here.
        let by = wanted
            .iter()
            .find(|t| t.starts_with("bpr:bpr-deployment:"))
            .or_else(|| wanted.first());
        let first = match by {
            Some(tag) => format!(
                "/v2/droplets?per_page={PER_PAGE}&tag_name={}",
                provider_sdk::http::percent_encode(tag)
            ),
            None => format!("/v2/droplets?per_page={PER_PAGE}"),
        };
        let droplets = api.all_pages(&first, "listing droplets", |p: DropletsPage| {
            (p.droplets, p.links)
        })?;
        let mut found: Vec<Instance> = droplets
            .iter()
            .filter(|d| wanted.iter().all(|t| d.tags.contains(t)))
            .filter(|d| {
                query.regions.is_empty()
                    || d.region
                        .as_ref()
                        .is_some_and(|r| query.regions.contains(&r.slug))
            })
            .map(|d| model::instance_from_droplet(d, vec![]))
            .collect();
        let orphans = leftovers::orphaned(&api, &query, &found)?;
        found.extend(orphans);
        Ok(found)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(spec: ClusterSpec) -> Result<Cluster, Error> {
        create_cluster(&Api::from_settings(), spec)
    }

    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        let api = Api::from_settings();
        let id = path_segment(&target.id, "cluster id")?;
        let env: KubeClusterEnvelope = api.get_json(
            &format!("/v2/kubernetes/clusters/{id}"),
            &format!("reading cluster {}", target.name),
        )?;
        let mut cluster = model::cluster_from_api(&env.kubernetes_cluster);
        if cluster.endpoint.is_some() {
            // DigitalOcean serves the CA only with the credentials; the token
            // that comes with it is dropped here (the host asks for it through
            // get-credentials).
            let creds = fetch_credentials(&api, id, &target.name)?;
            cluster.ca_certificate_pem = creds
                .certificate_authority_data
                .as_deref()
                .and_then(pem_from_base64);
        }
        Ok(cluster)
    }

    fn delete_cluster(target: ClusterRef) -> Result<DeleteStatus, Error> {
        let api = Api::from_settings();
        let id = path_segment(&target.id, "cluster id")?;
        let path = format!("/v2/kubernetes/clusters/{id}");
        api.delete(&path, &format!("deleting cluster {}", target.name))?;
        match api
            .get_json::<KubeClusterEnvelope>(&path, &format!("reading cluster {}", target.name))
        {
            Err(Error::NotFound(_)) => Ok(DeleteStatus::Deleted),
            Ok(env)
                if env
                    .kubernetes_cluster
                    .status
                    .as_ref()
                    .and_then(|s| s.state.as_deref())
                    == Some("deleted") =>
            {
                Ok(DeleteStatus::Deleted)
            }
            Ok(_) => Ok(DeleteStatus::InProgress),
            Err(e) => Err(e),
        }
    }

    fn get_credentials(target: ClusterRef) -> Result<ClusterCredentials, Error> {
        let api = Api::from_settings();
        let id = path_segment(&target.id, "cluster id")?;
        let creds = fetch_credentials(&api, id, &target.name)?;
        if let Some(token) = creds.token.filter(|t| !t.is_empty()) {
            return Ok(ClusterCredentials::BearerToken(BearerCredential {
                token,
                expires_at: creds
                    .expires_at
                    .as_deref()
                    .and_then(provider_sdk::time::parse_rfc3339),
            }));
        }
        match (
            creds
                .client_certificate_data
                .as_deref()
                .and_then(pem_from_base64),
            creds.client_key_data.as_deref().and_then(pem_from_base64),
        ) {
            (Some(certificate_pem), Some(key_pem)) => {
                Ok(ClusterCredentials::ClientCertificate(ClientCertificate {
                    certificate_pem,
                    key_pem,
                }))
            }
            _ => Err(Error::Other(format!(
                "DigitalOcean returned no token and no client certificate for cluster {}; retry later",
                target.name
            ))),
        }
    }
}

// ---- offers ----------------------------------------------------------------

fn live_sizes(api: &Api) -> Result<Vec<model::Size>, Error> {
    api.all_pages(
        &format!("/v2/sizes?per_page={PER_PAGE}"),
        "listing sizes",
        |p: SizesPage| (p.sizes, p.links),
    )
}

#[derive(Deserialize)]
struct Snapshot {
    recorded: String,
    sizes: Vec<model::Size>,
}

fn snapshot_offers(regions: &[String]) -> Result<Vec<Offer>, Error> {
    let snap: Snapshot =
        provider_sdk::json::parse(SNAPSHOT.as_bytes(), "the embedded price snapshot")?;
    let source = PriceSource {
        source: SNAPSHOT_SOURCE.into(),
        observed_at: provider_sdk::time::parse_rfc3339(&snap.recorded).unwrap_or(0),
        from_snapshot: true,
    };
    Ok(model::offers_from_sizes(&snap.sizes, regions, &source))
}

// ---- droplets --------------------------------------------------------------

fn create_instance(api: &Api, spec: InstanceSpec) -> Result<Instance, Error> {
    if spec.spot {
        return Err(Error::Unsupported(
            "DigitalOcean has no spot droplets; ask for an on-demand instance".into(),
        ));
    }
    if spec.instance_type.is_empty() || spec.region.is_empty() {
        return Err(Error::InvalidRequest(
            "a droplet needs a size (instance-type) and a region".into(),
        ));
    }
    let idem_tag = model::idempotency_tag(&spec.idempotency_key)?;
    let mut labels = spec.labels.clone();
    if !labels.iter().any(|(k, _)| k == "bpr-deployment") {
        labels.push(("bpr-deployment".into(), spec.deployment_id.clone()));
    }
    let mut tags: Vec<String> = labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    tags.push(idem_tag.clone());
    if spec.disk_gib > 0 {
        log::debug("disk-gib is ignored: a DigitalOcean size comes with a fixed disk");
    }

    let name = model::safe_name("bpr-", &spec.deployment_id, 63);
    let firewall_name = model::safe_name("bpr-", &spec.deployment_id, 200);
    // Keys and the firewall are named and tagged after the deployment when
    // they are created, so whatever a crash leaves is found by it alone.
    let dep_tag = leftovers::deployment_tag(&spec.deployment_id)?;
    let key_name = dep_tag.clone();

    // DigitalOcean has no idempotency token: a droplet already carrying this
    // create's tag is the result of an earlier attempt whose answer was lost.
    let existing = api.all_pages(
        &format!(
            "/v2/droplets?per_page={PER_PAGE}&tag_name={}",
            provider_sdk::http::percent_encode(&idem_tag)
        ),
        "looking for a droplet from an earlier attempt",
        |p: DropletsPage| (p.droplets, p.links),
    )?;

    let made = (|| {
        // The firewall exists before any droplet it protects: a droplet is
        // never reachable on ports the request did not open, not even after a
        // crash.
        leftovers::ensure_tag(api, &dep_tag)?;
        let firewall = ensure_firewall(api, &firewall_name, &dep_tag, &spec.open_ports)?;
        let keys = ensure_keys(api, &spec.ssh_public_keys, &key_name)?;
        let resources: Vec<ResourceRef> = keys.iter().map(|k| k.resource.clone()).collect();
        if let Some(d) = existing.into_iter().next() {
            log::info(&format!(
                "droplet {} already exists for this create; reusing it",
                d.id
            ));
            return Ok((d, resources, firewall));
        }
        let image = spec
            .image
            .clone()
            .or_else(|| settings::get("image"))
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        let image: Value = match image.parse::<u64>() {
            Ok(id) => json!(id),
            Err(_) => json!(image),
        };
        let mut body = json!({
            "name": name,
            "region": spec.region,
            "size": spec.instance_type,
            "image": image,
            "ssh_keys": keys_for_droplet(&keys),
            "tags": tags,
            "monitoring": true,
            "ipv6": false,
        });
        if let Some(ud) = &spec.user_data {
            body["user_data"] = json!(ud);
        }
        let env: DropletEnvelope = api.post_json(
            "/v2/droplets",
            &body,
            &format!(
                "creating droplet {name} ({} in {})",
                spec.instance_type, spec.region
            ),
        )?;
        Ok((env.droplet, resources, firewall))
    })();
    let (droplet, mut resources, firewall) = match made {
        Ok(m) => m,
        Err(e) => {
            // After a transport failure the droplet may exist with the keys and
            // firewall; a retry finds all three (by tag and by name). Otherwise
            // nothing of this create runs: what no droplet of the deployment
            // uses goes.
            if !matches!(e, Error::Transient(_) | Error::Other(_))
                && let Err(ce) = leftovers::delete_if_unused(api, &spec.deployment_id)
            {
                log::warn(&format!(
                    "the firewall and keys of {} stay until a delete-instance with its label: {}",
                    spec.deployment_id,
                    errors::message(&ce)
                ));
            }
            return Err(e);
        }
    };
    resources.push(ResourceRef {
        kind: KIND_FIREWALL.into(),
        id: firewall,
    });
    resources.retain(|r| r.kind != "ssh-key-existing");
    Ok(model::instance_from_droplet(&droplet, resources))
}

/// An SSH key the droplet gets; `resource` is `ssh-key` when this create
/// registered it (so delete removes it) and `ssh-key-existing` otherwise.
struct KeyUse {
    id: u64,
    resource: ResourceRef,
}

fn keys_for_droplet(keys: &[KeyUse]) -> Vec<Value> {
    keys.iter().map(|k| json!(k.id)).collect()
}

#[derive(Deserialize)]
struct SshKey {
    id: u64,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct SshKeyEnvelope {
    ssh_key: SshKey,
}

/// Find each public key by fingerprint, registering it when unknown.
fn ensure_keys(api: &Api, public_keys: &[String], name: &str) -> Result<Vec<KeyUse>, Error> {
    let mut out: Vec<KeyUse> = Vec::new();
    for (i, line) in public_keys.iter().enumerate() {
        let line = line.trim();
        let fp = codec::ssh_fingerprint(line).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "SSH public key #{} is not an OpenSSH public key line (`type base64 [comment]`)",
                i + 1
            ))
        })?;
        let key_name = leftovers::key_name(name, i, public_keys.len());
        let found = match api.get_json::<SshKeyEnvelope>(
            &format!("/v2/account/keys/{fp}"),
            &format!("looking up SSH key {fp}"),
        ) {
            Ok(env) => Some(env.ssh_key),
            Err(Error::NotFound(_)) => None,
            Err(e) => {
                cleanup_keys(api, &out);
                return Err(e);
            }
        };
        let (key, ours) = match found {
            // A key with our name was registered by an earlier attempt of this create.
            Some(k) => {
                let ours = k.name == key_name;
                (k, ours)
            }
            None => {
                let created: Result<SshKeyEnvelope, Error> = api.post_json(
                    "/v2/account/keys",
                    &json!({ "name": key_name, "public_key": line }),
                    &format!("registering SSH key {fp}"),
                );
                match created {
                    Ok(env) => (env.ssh_key, true),
                    Err(e) => {
                        cleanup_keys(api, &out);
                        return Err(e);
                    }
                }
            }
        };
        out.push(KeyUse {
            id: key.id,
            resource: ResourceRef {
                kind: if ours {
                    KIND_SSH_KEY
                } else {
                    "ssh-key-existing"
                }
                .into(),
                id: key.id.to_string(),
            },
        });
    }
    Ok(out)
}

fn cleanup_keys(api: &Api, keys: &[KeyUse]) {
    for k in keys.iter().filter(|k| k.resource.kind == KIND_SSH_KEY) {
        if let Err(e) = api.delete(&format!("/v2/account/keys/{}", k.id), "deleting an SSH key") {
            log::warn(&format!(
                "SSH key {} registered for a failed create could not be deleted: {}",
                k.id,
                errors::message(&e)
            ));
        }
    }
}

#[derive(Deserialize)]
struct Firewall {
    id: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct FirewallEnvelope {
    firewall: Firewall,
}

#[derive(Deserialize)]
struct FirewallsPage {
    firewalls: Vec<Firewall>,
    #[serde(default)]
    links: model::Links,
}

/// The firewall applied to `tag` (the deployment's), if one exists.
fn find_firewall(api: &Api, tag: &str) -> Result<Option<String>, Error> {
    let all = api.all_pages(
        &format!("/v2/firewalls?per_page={PER_PAGE}"),
        "listing firewalls",
        |p: FirewallsPage| (p.firewalls, p.links),
    )?;
    Ok(all
        .into_iter()
        .find(|f| f.tags.as_ref().is_some_and(|t| t.iter().any(|x| x == tag)))
        .map(|f| f.id))
}

/// The deployment's firewall (found by its tag, else created): inbound only
/// the requested ports, outbound everything, applied to droplets with `tag`.
fn ensure_firewall(api: &Api, name: &str, tag: &str, ports: &[PortRule]) -> Result<String, Error> {
    if let Some(id) = find_firewall(api, tag)? {
        return Ok(id);
    }
    let inbound: Vec<Value> = ports.iter().map(inbound_rule).collect();
    let anywhere = json!({ "addresses": ["0.0.0.0/0", "::/0"] });
    let outbound = json!([
        // "0" is DigitalOcean's "all ports" (and the only value for ICMP).
        { "protocol": "tcp", "ports": "0", "destinations": anywhere },
        { "protocol": "udp", "ports": "0", "destinations": anywhere },
        { "protocol": "icmp", "ports": "0", "destinations": anywhere },
    ]);
    let env: FirewallEnvelope = api.post_json(
        "/v2/firewalls",
        &json!({
            "name": name,
            "tags": [tag],
            "inbound_rules": inbound,
            "outbound_rules": outbound,
        }),
        &format!("creating firewall {name}"),
    )?;
    Ok(env.firewall.id)
}

fn inbound_rule(rule: &PortRule) -> Value {
    let ports = match rule.end_port {
        Some(end) if end != rule.port => format!("{}-{end}", rule.port),
        _ => rule.port.to_string(),
    };
    let addresses: Vec<String> = if rule.source_cidrs.is_empty() {
        vec!["0.0.0.0/0".into(), "::/0".into()]
    } else {
        rule.source_cidrs.clone()
    };
    json!({
        "protocol": match rule.protocol { Protocol::Tcp => "tcp", Protocol::Udp => "udp" },
        "ports": ports,
        "sources": { "addresses": addresses },
    })
}

fn delete_instance(api: &Api, target: InstanceRef) -> Result<DeleteStatus, Error> {
    let deployment = leftovers::deployment_of(&target.labels);
    if target.id.is_empty() {
        let Some(dep) = deployment else {
            return Err(Error::InvalidRequest(
                "delete-instance needs a droplet id or the bpr-deployment label".into(),
            ));
        };
        return leftovers::delete_all(api, &target.region, dep);
    }
    let id = droplet_id(&target.id)?;
    let mut resources = target.resources.clone();
    if !resources.iter().any(|r| r.kind == KIND_FIREWALL) {
        // Crash recovery passes what list-instances found, without resources:
        // what an older version made per create is found from its tag.
        resources.extend(discover_resources(api, id)?);
    }
    api.delete(
        &format!("/v2/droplets/{id}"),
        &format!("deleting droplet {id}"),
    )?;
    let Some(dep) = deployment else {
        leftovers::delete_refs(api, &resources)?;
        return Ok(DeleteStatus::Deleted);
    };
    // The deployment's firewall and keys serve its other droplets too: they
    // go with the last one.
    let tag = leftovers::deployment_tag(dep)?;
    let shared = leftovers::shared_of(api, &tag)?;
    let is_shared = |r: &ResourceRef| shared.iter().any(|s| s.kind == r.kind && s.id == r.id);
    let mut doomed: Vec<ResourceRef> = resources.into_iter().filter(|r| !is_shared(r)).collect();
    if leftovers::droplets_of(api, &tag)?
        .iter()
        .all(|d| d.id == id)
    {
        doomed.extend(shared);
    }
    leftovers::delete_refs(api, &doomed)?;
    Ok(DeleteStatus::Deleted)
}

/// Firewall and SSH keys made by the create of droplet `id`, found through
/// its idempotency tag (firewall bound to it, keys named after it).
fn discover_resources(api: &Api, id: u64) -> Result<Vec<ResourceRef>, Error> {
    let droplet = match api.get_json::<DropletEnvelope>(
        &format!("/v2/droplets/{id}"),
        &format!("reading droplet {id}"),
    ) {
        Ok(env) => env.droplet,
        Err(Error::NotFound(_)) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let Some(tag) = droplet
        .tags
        .iter()
        .find(|t| t.starts_with(model::IDEMPOTENCY_TAG_PREFIX))
    else {
        return Ok(vec![]);
    };
    let mut out: Vec<ResourceRef> = api
        .all_pages(
            &format!("/v2/firewalls?per_page={PER_PAGE}"),
            "listing firewalls",
            |p: FirewallsPage| (p.firewalls, p.links),
        )?
        .into_iter()
        .filter(|f| f.tags.as_ref().is_some_and(|t| t.contains(tag)))
        .map(|f| ResourceRef {
            kind: KIND_FIREWALL.into(),
            id: f.id,
        })
        .collect();
    if let Some(key) = model::decode_tag_value(&tag[model::IDEMPOTENCY_TAG_PREFIX.len()..]) {
        let name = model::safe_name("bpr-", &key, 200);
        let keys = api.all_pages(
            &format!("/v2/account/keys?per_page={PER_PAGE}"),
            "listing SSH keys",
            |p: SshKeysPage| (p.ssh_keys, p.links),
        )?;
        out.extend(
            keys.into_iter()
                .filter(|k| k.name == name || k.name.starts_with(&format!("{name} key ")))
                .map(|k| ResourceRef {
                    kind: KIND_SSH_KEY.into(),
                    id: k.id.to_string(),
                }),
        );
    }
    Ok(out)
}

#[derive(Deserialize)]
struct SshKeysPage {
    ssh_keys: Vec<SshKey>,
    #[serde(default)]
    links: model::Links,
}

fn droplet_id(id: &str) -> Result<u64, Error> {
    id.parse::<u64>().map_err(|_| {
        Error::InvalidRequest(format!(
            "`{id}` is not a DigitalOcean droplet id (a positive integer)"
        ))
    })
}

/// `id` if it is safe as one URL path segment.
fn path_segment<'a>(id: &'a str, what: &str) -> Result<&'a str, Error> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
    {
        Ok(id)
    } else {
        Err(Error::InvalidRequest(format!(
            "`{id}` is not a valid {what}"
        )))
    }
}

// ---- kubernetes ------------------------------------------------------------

fn create_cluster(api: &Api, spec: ClusterSpec) -> Result<Cluster, Error> {
    if spec.node_pools.is_empty() {
        return Err(Error::InvalidRequest(
            "a DOKS cluster needs at least one node pool".into(),
        ));
    }
    if spec.node_pools.iter().any(|p| p.spot) {
        return Err(Error::Unsupported(
            "DigitalOcean has no spot nodes; ask for on-demand node pools".into(),
        ));
    }
    let mut labels = spec.labels.clone();
    if !labels.iter().any(|(k, _)| k == "bpr-deployment") {
        labels.push(("bpr-deployment".into(), spec.deployment_id.clone()));
    }
    let mut tags: Vec<String> = labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    tags.push(model::idempotency_tag(&spec.idempotency_key)?);

    // Retry safety: cluster names are unique per account, so an earlier
    // attempt's cluster is found by name (and must carry our tag).
    let clusters = api.all_pages(
        &format!("/v2/kubernetes/clusters?per_page={PER_PAGE}"),
        "listing clusters",
        |p: KubeClustersPage| (p.kubernetes_clusters, p.links),
    )?;
    if let Some(c) = clusters.iter().find(|c| c.name == spec.name) {
        if c.tags.iter().any(|t| tags.last() == Some(t)) {
            return Ok(model::cluster_from_api(c));
        }
        return Err(Error::InvalidRequest(format!(
            "a DOKS cluster named {} already exists and was not created by this deployment; choose another name",
            spec.name
        )));
    }

    let pools: Vec<Value> = spec
        .node_pools
        .iter()
        .map(|p| {
            let mut pool = json!({
                "name": p.name,
                "size": p.instance_type,
                "count": p.count,
                "tags": tags[..tags.len() - 1],
            });
            if let (Some(min), Some(max)) = (p.min_count, p.max_count) {
                pool["auto_scale"] = json!(true);
                pool["min_nodes"] = json!(min);
                pool["max_nodes"] = json!(max);
            }
            pool
        })
        .collect();
    let version = spec
        .kubernetes_version
        .clone()
        .or_else(|| settings::get("kubernetes-version"))
        .unwrap_or_else(|| DEFAULT_K8S_VERSION.to_string());
    let env: KubeClusterEnvelope = api.post_json(
        "/v2/kubernetes/clusters",
        &json!({
            "name": spec.name,
            "region": spec.region,
            "version": version,
            "node_pools": pools,
            "tags": tags,
        }),
        &format!("creating DOKS cluster {} in {}", spec.name, spec.region),
    )?;
    Ok(model::cluster_from_api(&env.kubernetes_cluster))
}

fn fetch_credentials(api: &Api, id: &str, name: &str) -> Result<KubeCredentials, Error> {
    // Never log this answer: it carries the cluster token.
    api.get_json(
        &format!("/v2/kubernetes/clusters/{id}/credentials"),
        &format!("reading the credentials of cluster {name}"),
    )
}

fn pem_from_base64(data: &str) -> Option<String> {
    codec::base64_decode(data).and_then(|b| String::from_utf8(b).ok())
}

// The generated export glue is `unsafe` (FFI); the workspace denies unsafe
// code everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_snapshot_parses_into_positive_priced_offers() {
        let snap: Snapshot = serde_json::from_str(SNAPSHOT).expect("snapshot is valid JSON");
        assert_eq!(snap.recorded, "2026-11-26");
        let source = PriceSource {
            source: SNAPSHOT_SOURCE.into(),
            observed_at: 0,
            from_snapshot: true,
        };
        let offers = model::offers_from_sizes(&snap.sizes, &[], &source);
        assert!(offers.len() >= 40, "{} offers", offers.len());
        assert!(offers.iter().all(|o| o.hourly_usd > 0.0 && o.vcpus > 0.0));
    }

    #[test]
    fn inbound_rules_name_only_the_requested_ports() {
        let rule = inbound_rule(&PortRule {
            port: 8000,
            end_port: Some(8010),
            protocol: Protocol::Tcp,
            source_cidrs: vec![],
        });
        assert_eq!(rule["ports"], "8000-8010");
        assert_eq!(rule["sources"]["addresses"], json!(["0.0.0.0/0", "::/0"]));
    }
}
