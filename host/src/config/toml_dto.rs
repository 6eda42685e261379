//! Private TOML shapes of the config file and their conversion into the
//! public domain types. Every struct denies unknown fields.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::SshSettings;
use super::operator::{
    DeploymentDefaults, KubernetesCluster, KubernetesConfig, ManagedKubernetesCluster,
    OperatorConfig, WebhookSettings,
};
use super::{
    BUILTIN_PROVIDERS_DIR, Config, Error, HostSettings, IntegrityMode, ProviderConfig, Result,
    ValueError, default_state_dir,
};
use crate::capabilities::AllowRule;
use crate::capabilities::LogLimits;
use crate::capabilities::OAuthConfig;
use crate::capabilities::OutboundLimits;
use crate::capabilities::{AwsCredentialSource, CredentialConfig, SecretSource};
use crate::kubernetes::ScalingPolicy;
use crate::placement::{Mode, Policy};
use crate::providers::ReturnLimits;
use crate::providers::TrustedKey;
use crate::ssh::{SshHostConfig, SshLimits};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    #[serde(default)]
    host: HostToml,
    #[serde(default)]
    operator: OperatorToml,
    #[serde(default)]
    providers: BTreeMap<String, ProviderToml>,
    #[serde(default)]
    ssh: SshToml,
    #[serde(default)]
    serve: super::serve::ServeToml,
    #[serde(default)]
    database: super::database::DatabaseToml,
    #[serde(default)]
    coordination: super::coordination::CoordinationToml,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SshToml {
    default_timeout_ms: Option<u64>,
    max_timeout_ms: Option<u64>,
    stdout_cap_bytes: Option<usize>,
    stderr_cap_bytes: Option<usize>,
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    hosts: Vec<SshHostToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SshHostToml {
    alias: String,
    address: String,
    port: Option<u16>,
    user: String,
    private_key_file: PathBuf,
    host_key_fingerprint: Option<String>,
    trust_on_first_use: Option<bool>,
    hourly_usd: Option<f64>,
    region: Option<String>,
    max_concurrency: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HostToml {
    providers_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    lock_file: Option<PathBuf>,
    artifact_dir: Option<PathBuf>,
    artifact_key_file: Option<PathBuf>,
    database: Option<PathBuf>,
    integrity: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<TrustedKeyToml>,
    watch: Option<bool>,
    max_concurrent_calls: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OperatorToml {
    #[serde(default)]
    deployment: DeploymentToml,
    #[serde(default)]
    kubernetes: KubernetesToml,
    #[serde(default)]
    scaling: ScalingToml,
    #[serde(default)]
    webhooks: WebhooksToml,
    #[serde(default)]
    health: super::lifecycle::HealthToml,
    #[serde(default)]
    payment: super::lifecycle::PaymentToml,
    #[serde(default)]
    budget: super::lifecycle::BudgetToml,
    #[serde(default)]
    costs: super::lifecycle::CostsToml,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebhooksToml {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeploymentToml {
    mode: Option<String>,
    #[serde(default)]
    preferred_providers: Vec<String>,
    #[serde(default)]
    excluded_providers: Vec<String>,
    max_cost_per_hour: Option<f64>,
    allow_spot_instances: Option<bool>,
    #[serde(default)]
    default_regions: Vec<String>,
    allow_fractional_gpus: Option<bool>,
    allow_promotional: Option<bool>,
    price_refresh_secs: Option<u64>,
    price_fetch_timeout_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct KubernetesToml {
    #[serde(default)]
    clusters: Vec<ClusterToml>,
    #[serde(default)]
    managed: Vec<ManagedClusterToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManagedClusterToml {
    name: String,
    provider: String,
    region: String,
    id: String,
    cluster_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterToml {
    name: String,
    kubeconfig: PathBuf,
    context: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScalingToml {
    enabled: Option<bool>,
    min_replicas: Option<u32>,
    max_replicas: Option<u32>,
    target_cpu: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderToml {
    enabled: Option<bool>,
    #[serde(default)]
    allow: Vec<String>,
    call_timeout_ms: Option<u64>,
    memory_mib: Option<u64>,
    max_request_body_kib: Option<u64>,
    max_response_body_kib: Option<u64>,
    price_multiplier: Option<f64>,
    allow_ssh: Option<bool>,
    log_records_burst: Option<u32>,
    log_records_per_sec: Option<u32>,
    max_returned_offers: Option<usize>,
    max_returned_instances: Option<usize>,
    max_returned_list_items: Option<usize>,
    max_returned_string_kib: Option<usize>,
    max_returned_mib: Option<usize>,
    #[serde(default)]
    trusted_keys: Vec<TrustedKeyToml>,
    #[serde(default)]
    settings: BTreeMap<String, toml::Value>,
    credential: Option<CredentialToml>,
    // Outbound limits (capabilities::http_limits::OutboundLimits).
    methods: Option<Vec<String>>,
    max_requests_per_call: Option<u32>,
    max_concurrent_requests_per_call: Option<u32>,
    max_concurrent_requests: Option<u32>,
    max_connections: Option<u32>,
    host_memory_mib: Option<u64>,
}

/// A trusted signing key: its base64 form, or a table naming it.
#[derive(Deserialize)]
#[serde(untagged)]
enum TrustedKeyToml {
    Key(String),
    Named(NamedKeyToml),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedKeyToml {
    name: Option<String>,
    key: Option<String>,
    key_file: Option<PathBuf>,
}

/// Parse `trusted_keys` entries.
fn trusted_keys(
    entries: Vec<TrustedKeyToml>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> std::result::Result<Vec<TrustedKey>, ValueError> {
    entries
        .into_iter()
        .map(|e| match e {
            TrustedKeyToml::Key(k) => Ok(TrustedKey::from_base64(None, &k)?),
            TrustedKeyToml::Named(NamedKeyToml {
                name,
                key,
                key_file,
            }) => match (key, key_file) {
                (Some(k), None) => Ok(TrustedKey::from_base64(name, &k)?),
                (None, Some(f)) => Ok(TrustedKey::from_file(name, &resolve(f))?),
                _ => Err(ValueError::KeyEntry),
            },
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialToml {
    kind: String,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default)]
    hosts: Vec<String>,
    shared_credentials_file: Option<PathBuf>,
    profile: Option<String>,
    key_file: Option<PathBuf>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    authority: Option<String>,
}

/// Parse `text` (from `origin`), resolving relative paths against `base`.
pub(super) fn parse(text: &str, origin: &str, base: &Path) -> Result<Config> {
    let dto: ConfigToml = toml::from_str(text).map_err(|e| Error::ParseFailed {
        path: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let invalid = |key: String, message: String| Error::InvalidValue {
        path: origin.to_string(),
        key,
        message,
    };
    let refused = |key: String, source: ValueError| Error::ValueRefused {
        path: origin.to_string(),
        key,
        source,
    };
    let resolve = |p: PathBuf| -> PathBuf {
        let p = expand_home(p);
        if p.is_absolute() { p } else { base.join(p) }
    };

    let providers_dir = dto
        .host
        .providers_dir
        .map(resolve)
        .unwrap_or_else(|| PathBuf::from(BUILTIN_PROVIDERS_DIR));
    let lock_file = dto
        .host
        .lock_file
        .map(resolve)
        .unwrap_or_else(|| providers_dir.join("providers.lock"));
    let integrity = match dto.host.integrity.as_deref() {
        None | Some("enforce") => IntegrityMode::Enforce,
        Some("warn") => IntegrityMode::Warn,
        Some("signed") => IntegrityMode::Signed,
        Some(other) => {
            return Err(invalid(
                "host.integrity".into(),
                format!("unknown mode {other:?}; use \"enforce\", \"warn\" or \"signed\""),
            ));
        }
    };
    let host_keys = trusted_keys(dto.host.trusted_keys, &resolve)
        .map_err(|e| refused("host.trusted_keys".into(), e))?;
    let state_dir = dto
        .host
        .state_dir
        .map(resolve)
        .unwrap_or_else(default_state_dir);
    let artifact_dir = dto
        .host
        .artifact_dir
        .map(resolve)
        .unwrap_or_else(|| state_dir.join("artifacts"));
    let artifact_key_file = dto
        .host
        .artifact_key_file
        .map(resolve)
        .unwrap_or_else(|| state_dir.join("artifact-cache.key"));
    if artifact_key_file.starts_with(&artifact_dir) {
        return Err(invalid(
            "host.artifact_key_file".into(),
            format!(
                "{} lies inside artifact_dir {}; the key that vouches for artifacts must be kept outside their directory",
                artifact_key_file.display(),
                artifact_dir.display()
            ),
        ));
    }
    // `[host] database`: a SQLite file, or a postgres:// URL (issue 17).
    let (database, postgres) = match dto.host.database {
        Some(d) if crate::db::PostgresTarget::is_url(&d.to_string_lossy()) => {
            let target = crate::db::PostgresTarget::parse(&d.to_string_lossy())
                .map_err(|e| invalid("host.database".into(), e.to_string()))?;
            (state_dir.join("bpr.sqlite3"), Some(target))
        }
        Some(d) => (resolve(d), None),
        None => (state_dir.join("bpr.sqlite3"), None),
    };
    let host = HostSettings {
        providers_dir,
        artifact_dir,
        artifact_key_file,
        database,
        postgres,
        state_dir,
        lock_file,
        integrity,
        trusted_keys: host_keys,
        watch: dto.host.watch.unwrap_or(true),
        max_concurrent_calls: dto.host.max_concurrent_calls.unwrap_or(256).max(1),
    };

    let d = dto.operator.deployment;
    let defaults = DeploymentDefaults::default();
    let mode = match d.mode.as_deref() {
        None | Some("auto-cheapest") => Mode::AutoCheapest,
        Some("preferred") => Mode::Preferred,
        Some("local") => Mode::Local,
        Some(other) => {
            return Err(invalid(
                "operator.deployment.mode".into(),
                format!(
                    "unknown mode {other:?}; use \"auto-cheapest\", \"preferred\" or \"local\""
                ),
            ));
        }
    };
    if let Some(max) = d.max_cost_per_hour
        && !(max > 0.0 && max.is_finite())
    {
        return Err(invalid(
            "operator.deployment.max_cost_per_hour".into(),
            format!("must be a positive number of USD per hour, got {max}"),
        ));
    }
    let policy = &defaults.policy;
    let deployment = DeploymentDefaults {
        policy: Policy {
            mode,
            preferred_providers: d.preferred_providers,
            excluded_providers: d.excluded_providers,
            max_cost_per_hour: d.max_cost_per_hour,
            allow_spot_instances: d
                .allow_spot_instances
                .unwrap_or(policy.allow_spot_instances),
            default_regions: d.default_regions,
            allow_fractional_gpus: d
                .allow_fractional_gpus
                .unwrap_or(policy.allow_fractional_gpus),
            allow_promotional: d.allow_promotional.unwrap_or(policy.allow_promotional),
            max_candidates: policy.max_candidates,
        },
        price_refresh_secs: d.price_refresh_secs.unwrap_or(defaults.price_refresh_secs),
        price_fetch_timeout_secs: d
            .price_fetch_timeout_secs
            .unwrap_or(defaults.price_fetch_timeout_secs),
    };
    let managed: Vec<ManagedKubernetesCluster> = dto
        .operator
        .kubernetes
        .managed
        .into_iter()
        .map(|m| ManagedKubernetesCluster {
            name: m.name,
            provider: m.provider,
            region: m.region,
            id: m.id,
            cluster_name: m.cluster_name,
        })
        .collect();
    let kubernetes = KubernetesConfig {
        managed,
        clusters: dto
            .operator
            .kubernetes
            .clusters
            .into_iter()
            .map(|c| KubernetesCluster {
                name: c.name,
                kubeconfig: resolve(c.kubeconfig),
                context: c.context,
            })
            .collect(),
    };
    let mut names: Vec<&str> = kubernetes
        .clusters
        .iter()
        .map(|c| c.name.as_str())
        .chain(kubernetes.managed.iter().map(|m| m.name.as_str()))
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(
            "operator.kubernetes".into(),
            format!(
                "cluster name `{}` is used twice (clusters and managed share one namespace of names)",
                w[0]
            ),
        ));
    }
    if let Some(m) = kubernetes.managed.iter().find(|m| {
        [&m.name, &m.provider, &m.region, &m.id]
            .iter()
            .any(|v| v.trim().is_empty())
    }) {
        return Err(invalid(
            "operator.kubernetes.managed".into(),
            format!(
                "entry `{}`: name, provider, region and id must not be empty",
                m.name
            ),
        ));
    }
    let s = dto.operator.scaling;
    let sd = ScalingPolicy::default();
    let scaling = ScalingPolicy {
        enabled: s.enabled.unwrap_or(sd.enabled),
        min_replicas: s.min_replicas.unwrap_or(sd.min_replicas),
        max_replicas: s.max_replicas.unwrap_or(sd.max_replicas),
        target_cpu: s.target_cpu.unwrap_or(sd.target_cpu),
    };
    if scaling.min_replicas > scaling.max_replicas {
        return Err(invalid(
            "operator.scaling.min_replicas".into(),
            format!(
                "min_replicas ({}) is above max_replicas ({})",
                scaling.min_replicas, scaling.max_replicas
            ),
        ));
    }

    let mut webhook_rules = Vec::new();
    for rule in &dto.operator.webhooks.allow {
        webhook_rules.push(
            AllowRule::parse(rule)
                .map_err(|e| refused("operator.webhooks.allow".into(), e.into()))?,
        );
    }
    let webhooks = WebhookSettings {
        allow: webhook_rules,
    };
    let lifecycle = super::lifecycle::convert(
        dto.operator.health,
        dto.operator.payment,
        dto.operator.budget,
        dto.operator.costs,
    )
    .map_err(|(key, message)| invalid(key, message))?;

    let mut providers = BTreeMap::new();
    for (name, mut p) in dto.providers {
        let key = |k: &str| format!("providers.{name}.{k}");
        let d = ProviderConfig::unconfigured();
        let outbound = outbound_limits(&p, &d.outbound).map_err(|(k, e)| refused(key(k), e))?;
        let returned = returned_limits(&p, &d.returned).map_err(|(k, e)| refused(key(k), e))?;
        let provider_keys = trusted_keys(std::mem::take(&mut p.trusted_keys), &resolve)
            .map_err(|e| refused(key("trusted_keys"), e))?;
        let mut allow = Vec::new();
        for rule in &p.allow {
            allow.push(AllowRule::parse(rule).map_err(|e| refused(key("allow"), e.into()))?);
        }
        let mut settings = BTreeMap::new();
        for (k, v) in p.settings {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item {
                            toml::Value::String(s) => parts.push(s),
                            other => {
                                return Err(invalid(
                                    key(&format!("settings.{k}")),
                                    format!("lists may hold only strings, found {other}"),
                                ));
                            }
                        }
                    }
                    parts.join(",")
                }
                other => {
                    return Err(invalid(
                        key(&format!("settings.{k}")),
                        format!(
                            "settings are strings, numbers, booleans or lists of strings, found {other}"
                        ),
                    ));
                }
            };
            settings.insert(k, text);
        }
        let credential = match p.credential {
            None => CredentialConfig::None,
            Some(c) => credential(c, &resolve).map_err(|e| refused(key("credential"), e))?,
        };
        if let Some(m) = p.price_multiplier
            && !(m > 0.0 && m.is_finite())
        {
            return Err(invalid(
                key("price_multiplier"),
                format!("must be a positive number, got {m}"),
            ));
        }
        let kib = |v: Option<u64>, default: usize| v.map(|k| (k as usize) << 10).unwrap_or(default);
        providers.insert(
            name.clone(),
            ProviderConfig {
                enabled: p.enabled.unwrap_or(true),
                allow,
                call_timeout: p
                    .call_timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(d.call_timeout),
                memory_bytes: p
                    .memory_mib
                    .map(|m| (m as usize) << 20)
                    .unwrap_or(d.memory_bytes),
                max_request_body: kib(p.max_request_body_kib, d.max_request_body),
                max_response_body: kib(p.max_response_body_kib, d.max_response_body),
                price_multiplier: p.price_multiplier.unwrap_or(1.0),
                allow_ssh: p.allow_ssh.unwrap_or(false),
                settings,
                credential,
                outbound,
                log: LogLimits {
                    burst: p.log_records_burst.unwrap_or(d.log.burst),
                    per_second: p.log_records_per_sec.unwrap_or(d.log.per_second),
                },
                returned,
                trusted_keys: provider_keys,
            },
        );
    }

    let ld = SshLimits::default();
    let st = dto.ssh;
    let limits = SshLimits {
        default_timeout: st
            .default_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(ld.default_timeout),
        max_timeout: st
            .max_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(ld.max_timeout),
        stdout_cap: st.stdout_cap_bytes.unwrap_or(ld.stdout_cap),
        stderr_cap: st.stderr_cap_bytes.unwrap_or(ld.stderr_cap),
        connect_timeout: st
            .connect_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(ld.connect_timeout),
    };
    let ssh_hosts = st
        .hosts
        .into_iter()
        .map(|h| {
            let mut c = SshHostConfig::new(h.alias, h.address, h.user, resolve(h.private_key_file));
            c.port = h.port.unwrap_or(c.port);
            c.host_key_fingerprint = h.host_key_fingerprint;
            c.trust_on_first_use = h.trust_on_first_use.unwrap_or(false);
            c.hourly_usd = h.hourly_usd.unwrap_or(0.0);
            c.region = h.region.unwrap_or(c.region);
            c.max_concurrency = h.max_concurrency.unwrap_or(c.max_concurrency);
            c
        })
        .collect();

    let serve = dto.serve.into_settings(origin, &resolve)?;

    Ok(Config {
        origin: origin.to_string(),
        host,
        operator: OperatorConfig {
            deployment,
            kubernetes,
            scaling,
            webhooks,
            health: lifecycle.health,
            payment: lifecycle.payment,
            budget: lifecycle.budget,
            costs: lifecycle.costs,
        },
        providers,
        ssh: SshSettings {
            limits,
            hosts: ssh_hosts,
        },
        serve,
        database: dto.database.settings(origin, &resolve)?,
        coordination: dto.coordination.settings(origin)?,
    })
}

/// The `max_returned_*` keys of a provider section; each must be at least 1.
fn returned_limits(
    p: &ProviderToml,
    d: &ReturnLimits,
) -> std::result::Result<ReturnLimits, (&'static str, ValueError)> {
    let pick = |v: Option<usize>, key: &'static str, default: usize, unit: usize| match v {
        Some(0) => Err((key, ValueError::Zero)),
        Some(n) => n
            .checked_mul(unit)
            .ok_or((key, ValueError::TooLarge { value: n as u64 })),
        None => Ok(default),
    };
    Ok(ReturnLimits {
        max_offers: pick(
            p.max_returned_offers,
            "max_returned_offers",
            d.max_offers,
            1,
        )?,
        max_instances: pick(
            p.max_returned_instances,
            "max_returned_instances",
            d.max_instances,
            1,
        )?,
        max_list_items: pick(
            p.max_returned_list_items,
            "max_returned_list_items",
            d.max_list_items,
            1,
        )?,
        max_string_bytes: pick(
            p.max_returned_string_kib,
            "max_returned_string_kib",
            d.max_string_bytes,
            1 << 10,
        )?,
        max_total_bytes: pick(
            p.max_returned_mib,
            "max_returned_mib",
            d.max_total_bytes,
            1 << 20,
        )?,
    })
}

fn credential(
    c: CredentialToml,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<CredentialConfig, ValueError> {
    let secret = |env: Option<String>, file: Option<PathBuf>, what: &str| match (env, file) {
        (Some(e), None) => Ok(SecretSource::Env(e)),
        (None, Some(f)) => Ok(SecretSource::File(resolve(f))),
        (Some(_), Some(_)) => Err(ValueError::TwoSecretSources { what: what.into() }),
        (None, None) => Err(ValueError::NoSecretSource { what: what.into() }),
    };
    match c.kind.as_str() {
        "none" => Ok(CredentialConfig::None),
        "bearer" => Ok(CredentialConfig::Bearer {
            token: secret(c.token_env, c.token_file, "bearer")?,
            hosts: c.hosts,
        }),
        "aws-sigv4" => Ok(CredentialConfig::AwsSigV4 {
            source: AwsCredentialSource {
                shared_credentials_file: c.shared_credentials_file.map(resolve),
                profile: c.profile,
            },
            hosts: c.hosts,
        }),
        "gcp-service-account" => Ok(CredentialConfig::OAuth {
            source: OAuthConfig::GcpServiceAccount {
                key_file: resolve(c.key_file.ok_or(ValueError::NoKeyFile)?),
            },
            hosts: c.hosts,
        }),
        "azure-client-credentials" => {
            let client_secret = match (c.client_secret_env, c.client_secret_file) {
                (Some(e), None) => SecretSource::Env(e),
                (None, Some(f)) => SecretSource::File(resolve(f)),
                _ => return Err(ValueError::NoClientSecret),
            };
            let (Some(tenant_id), Some(client_id)) = (c.tenant_id, c.client_id) else {
                return Err(ValueError::NoClientIds);
            };
            let authority = c
                .authority
                .unwrap_or_else(|| "https://login.microsoftonline.com".into());
            if !(authority.starts_with("https://") || authority.starts_with("http://127.0.0.1")) {
                return Err(ValueError::InsecureAuthority { authority });
            }
            Ok(CredentialConfig::OAuth {
                source: OAuthConfig::AzureClientCredentials {
                    tenant_id,
                    client_id,
                    client_secret,
                    authority,
                },
                hosts: c.hosts,
            })
        }
        other => Err(ValueError::UnknownCredentialKind { kind: other.into() }),
    }
}

fn expand_home(p: PathBuf) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    p
}

/// A provider's outbound limits: its keys over the defaults. Errors name
/// the key.
fn outbound_limits(
    p: &ProviderToml,
    d: &OutboundLimits,
) -> std::result::Result<OutboundLimits, (&'static str, ValueError)> {
    let at_least_one = |k: &'static str, v: Option<u32>, default: u32| match v {
        Some(0) => Err((k, ValueError::Zero)),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(OutboundLimits {
        methods: match &p.methods {
            Some(m) => OutboundLimits::parse_methods(m).map_err(|e| ("methods", e.into()))?,
            None => d.methods.clone(),
        },
        max_requests_per_call: at_least_one(
            "max_requests_per_call",
            p.max_requests_per_call,
            d.max_requests_per_call,
        )?,
        max_concurrent_requests_per_call: at_least_one(
            "max_concurrent_requests_per_call",
            p.max_concurrent_requests_per_call,
            d.max_concurrent_requests_per_call,
        )?,
        max_concurrent_requests: at_least_one(
            "max_concurrent_requests",
            p.max_concurrent_requests,
            d.max_concurrent_requests,
        )?,
        max_connections: at_least_one("max_connections", p.max_connections, d.max_connections)?,
        host_memory: match p.host_memory_mib {
            Some(0) => return Err(("host_memory_mib", ValueError::Zero)),
            Some(m) => Some((m as usize) << 20),
            None => d.host_memory,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_file_and_key() {
        let err = parse(
            "[providers.aws]\nallowed = []\n",
            "ops.toml",
            Path::new("/"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ops.toml"), "{text}");
        assert!(text.contains("allowed"), "{text}");
    }

    #[test]
    fn unknown_operator_key_is_an_error() {
        let err = parse(
            "[operator.deployment]\nmax_cost = 1.0\n",
            "ops.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_cost"), "{err}");
    }

    #[test]
    fn seed_operator_sections_parse() {
        let cfg = parse(
            r#"
[operator.deployment]
mode = "auto-cheapest"
preferred_providers = ["aws", "gcp"]
max_cost_per_hour = 1.0
allow_spot_instances = true

[operator.kubernetes]
clusters = [ { name = "aws-prod", kubeconfig = "/etc/k8s/aws.config", context = "prod" } ]

[operator.scaling]
enabled = true
min_replicas = 1
max_replicas = 10
target_cpu = 70
"#,
            "seed.toml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            cfg.operator.deployment.policy.preferred_providers,
            ["aws", "gcp"]
        );
        assert_eq!(cfg.operator.deployment.policy.max_cost_per_hour, Some(1.0));
        assert!(cfg.operator.deployment.policy.allow_spot_instances);
        assert_eq!(
            cfg.operator.kubernetes.clusters[0].context.as_deref(),
            Some("prod")
        );
        assert_eq!(cfg.operator.scaling.target_cpu, 70);
    }

    #[test]
    fn bad_allow_rule_names_the_key() {
        let err = parse(
            "[providers.aws]\nallow = [\"ftp://x\"]\n",
            "ops.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("providers.aws.allow"), "{err}");
    }

    #[test]
    fn a_bad_trusted_key_names_the_setting_and_the_key() {
        let err = parse(
            "[host]\nintegrity = \"signed\"\ntrusted_keys = [{ name = \"acme\", key = \"RWQnope\" }]\n",
            "ops.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("host.trusted_keys") && err.contains("RWQnope"),
            "{err}"
        );
        let err = parse(
            "[providers.aws]\ntrusted_keys = [{ name = \"acme\" }]\n",
            "ops.toml",
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("providers.aws.trusted_keys") && err.contains("key_file"),
            "{err}"
        );
    }

    #[test]
    fn embedded_defaults_parse() {
        parse(
            super::super::DEFAULTS_TOML,
            "<embedded defaults>",
            Path::new("."),
        )
        .unwrap();
    }
}
