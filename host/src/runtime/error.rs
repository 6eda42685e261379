//! Errors of the runtime layer: refusing a component at load time, and a
//! call that failed. Traps (host-side containment) are kept apart from the
//! errors a component itself returns (`CallError::Provider`).

use crate::runtime::bindings::wit::ProviderError;

/// A component was refused at load time. The message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    ReadFailed {
        /// The file.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a valid component, or Cranelift failed.
    #[error("{file}: not a loadable component: {message}")]
    CompileFailed {
        /// The file.
        file: String,
        /// What wasmtime said.
        message: String,
    },
    /// Built against another major version of our WIT package.
    #[error(
        "{file}: built for blueprint:provider@{found}, but this host implements @{supported}; rebuild the component against wit/ @{supported}"
    )]
    WrongMajor {
        /// The file.
        file: String,
        /// The version in the component.
        found: String,
        /// The version the host implements.
        supported: String,
    },
    /// Imports something the sandbox does not provide.
    #[error("{file}: import `{import}` refused: {reason}")]
    ImportRefused {
        /// The file.
        file: String,
        /// The import.
        import: String,
        /// Why.
        reason: String,
    },
    /// Lacks a required export.
    #[error("{file}: lacks the export `{export}` every provider must have")]
    MissingExport {
        /// The file.
        file: String,
        /// The export.
        export: String,
    },
    /// Linking or `describe.info` failed.
    #[error("{file}: {message}")]
    InstantiateFailed {
        /// The file.
        file: String,
        /// What failed.
        message: String,
    },
    /// `describe.info().name` differs from the file stem.
    #[error(
        "{file}: describes itself as {reported:?}; rename the file to {reported}.wasm or fix the component"
    )]
    NameMismatch {
        /// The file.
        file: String,
        /// The reported name.
        reported: String,
    },
    /// The operator set a setting the component does not declare in
    /// `describe.info` (a typo would otherwise be silently ignored).
    #[error(
        "{file}: [providers.{provider}.settings] sets {}, which the component does not declare{}; it accepts {}",
        unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        did_you_mean(unknown, accepted),
        if accepted.is_empty() { "no settings".to_string() } else { accepted.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ") }
    )]
    UnknownSetting {
        /// The file.
        file: String,
        /// The provider.
        provider: String,
        /// The keys the component does not declare.
        unknown: Vec<String>,
        /// The keys it declares.
        accepted: Vec<String>,
    },
    /// Refused by its signature (`integrity = "signed"`).
    #[error("{file}: {reason}")]
    IntegrityRefused {
        /// The file.
        file: String,
        /// Why, and what to run.
        reason: String,
    },
    /// Refused by the lock file in enforce mode.
    #[error("{file}: {source}")]
    NotApproved {
        /// The file.
        file: String,
        /// Why, and what to run.
        #[source]
        source: Box<crate::providers::LockError>,
    },
}

/// ` (did you mean `url`?)` for the first unknown key close to an accepted one.
fn did_you_mean(unknown: &[String], accepted: &[String]) -> String {
    unknown
        .iter()
        .find_map(|u| {
            accepted
                .iter()
                .map(|a| (edit_distance(u, a), a))
                .filter(|(d, a)| *d <= 2.max(a.len() / 4))
                .min()
                .map(|(_, a)| format!(" (did you mean `{a}` for `{u}`?)"))
        })
        .unwrap_or_default()
}

/// Levenshtein distance of two short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A call into a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The component answered with its WIT `error` (displayed as a sentence:
    /// the case, then the component's text).
    #[error("{}", provider_error_sentence(.0))]
    Provider(ProviderError),
    /// The per-call deadline passed; the call was interrupted.
    #[error("{provider}: call `{op}` exceeded its deadline of {deadline_ms} ms and was stopped")]
    DeadlineExceeded {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// The deadline.
        deadline_ms: u64,
    },
    /// The component tried to grow memory beyond its cap.
    #[error("{provider}: call `{op}` exceeded the memory cap of {cap_mib} MiB and was stopped")]
    MemoryExceeded {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// The cap.
        cap_mib: usize,
    },
    /// The call held more host memory for wasi:http than its budget (header
    /// fields, request and response bytes on the host, handles).
    #[error(
        "{provider}: call `{op}` held more host memory than its budget of {budget_mib} MiB (wasi:http headers, bodies and handles) and was stopped"
    )]
    HostMemoryExceeded {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// The budget.
        budget_mib: usize,
    },
    /// The call held as many wasi handles (resource-table entries) as a
    /// call may, and asked for one more.
    #[error(
        "{provider}: call `{op}` held {max} wasi handles (fields, requests, bodies, streams, pollables), the most a call may, and was stopped"
    )]
    TooManyHandles {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// The cap.
        max: usize,
    },
    /// The component trapped (panic, unreachable, host trap).
    #[error("{provider}: call `{op}` trapped: {message}")]
    Trapped {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// Trap and captured guest stderr.
        message: String,
    },
    /// The component returned more than the operator's caps on returned data
    /// allow (too many offers or instances, a list or string too long).
    #[error(
        "{provider}: call `{op}` returned too much data: {what} (cap: {cap}); the answer was discarded. If it is legitimate, raise `providers.{provider}.{setting}`"
    )]
    ReturnedTooMuch {
        /// Provider.
        provider: String,
        /// Function.
        op: &'static str,
        /// What was too large, and where.
        what: String,
        /// The cap.
        cap: String,
        /// The setting that raises the cap.
        setting: &'static str,
    },
    /// No provider of that name is loaded.
    #[error("provider {0:?} is not loaded (see `bpr providers list`)")]
    NotLoaded(String),
    /// The provider does not announce this capability.
    #[error("provider {provider:?} does not support {what}")]
    Unsupported {
        /// Provider.
        provider: String,
        /// What was asked.
        what: &'static str,
    },
}

impl CallError {
    /// The provider's own error, when that is what failed.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::Provider(e) => Some(e),
            _ => None,
        }
    }
}

/// A provider's WIT `error` as a sentence a person reads: what kind of failure,
/// then the component's own text, once.
pub fn provider_error_sentence(e: &ProviderError) -> String {
    match e {
        ProviderError::Unauthorized(m) => format!("unauthorized: {m}"),
        ProviderError::NotFound(m) => format!("not found: {m}"),
        ProviderError::InvalidRequest(m) => format!("invalid request: {m}"),
        ProviderError::CapacityUnavailable(m) => format!("capacity unavailable: {m}"),
        ProviderError::QuotaExceeded(m) => format!("quota exceeded: {m}"),
        ProviderError::RegionUnavailable(m) => format!("region unavailable: {m}"),
        ProviderError::RateLimited(r) => match r.retry_after_ms {
            Some(ms) => format!("rate limited (retry after {ms} ms): {}", r.message),
            None => format!("rate limited: {}", r.message),
        },
        ProviderError::Unsupported(m) => format!("unsupported: {m}"),
        ProviderError::Denied(m) => format!("denied by the network policy: {m}"),
        ProviderError::Transient(m) => format!("temporary failure: {m}"),
        ProviderError::Other(m) => m.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_setting_names_the_closest_accepted_key() {
        let e = LoadError::UnknownSetting {
            file: "p/aws.wasm".into(),
            provider: "aws".into(),
            unknown: vec!["endpont".into()],
            accepted: vec!["endpoint".into(), "regions".into()],
        };
        let text = e.to_string();
        assert!(
            text.contains("did you mean `endpoint` for `endpont`"),
            "{text}"
        );
        assert!(text.contains("it accepts `endpoint`, `regions`"), "{text}");
        let none = LoadError::UnknownSetting {
            file: "f".into(),
            provider: "p".into(),
            unknown: vec!["zzz".into()],
            accepted: vec![],
        };
        assert!(
            none.to_string().ends_with("it accepts no settings"),
            "{none}"
        );
        assert!(!none.to_string().contains("did you mean"));
    }
}
