//! The audit trail of outbound requests (`bpr::audit::http`): a line when a
//! request is dispatched to the network, and exactly one line when it ends —
//! sent and read to the end, denied, failed, limited, or abandoned (the guest
//! dropped it, or the call's deadline cut it). The final line is written by
//! `Drop`, so no exit path of a request goes unaudited.
//!
//! Never logged: credentials (the host adds them after this record is made),
//! request bodies, query strings' secrets beyond what the path shows, and the
//! userinfo part of an authority (refused anyway).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived and its body was read to the end.
    Sent,
    /// The policy refused it (nothing was sent).
    Denied,
    /// A cap on requests refused it (nothing was sent).
    Limited,
    /// A transport or protocol error (after dispatch, or while preparing).
    Failed,
    /// Dropped before it ended: by the guest or by the call's deadline.
    Abandoned,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Denied => "denied",
            Self::Limited => "limited",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One request's audit record. Dropped unfinished, it logs `abandoned`.
#[derive(Debug)]
pub struct AuditRecord {
    provider: String,
    id: u64,
    method: String,
    host: String,
    port: u16,
    path: String,
    started: Instant,
    bytes_out: u64,
    bytes_in: u64,
    status: u16,
    dispatched: bool,
    finished: bool,
}

impl AuditRecord {
    /// A record for a request of `provider`; `host` must not carry userinfo.
    pub fn new(provider: &str, method: &str, host: &str, port: u16, path: &str) -> Self {
        Self {
            provider: provider.to_string(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            method: method.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            started: Instant::now(),
            bytes_out: 0,
            bytes_in: 0,
            status: 0,
            dispatched: false,
            finished: false,
        }
    }

    /// The request's id in the audit lines.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The request passed every check and goes to the network now.
    pub fn dispatched(&mut self, bytes_out: usize) {
        self.dispatched = true;
        self.bytes_out = bytes_out as u64;
        // No path here: the final line carries it, so that each request has
        // exactly one line naming host and path with its outcome.
        tracing::info!(
            target: "bpr::audit::http",
            provider = %self.provider,
            request_id = self.id,
            method = %self.method,
            host = self.host.as_str(),
            port = self.port,
            bytes_out = self.bytes_out,
            outcome = "dispatched",
            "outbound request dispatched"
        );
    }

    /// The response head arrived with `status`.
    pub fn responded(&mut self, status: u16) {
        self.status = status;
    }

    /// `bytes` more of the response body were received.
    pub fn received(&mut self, bytes: usize) {
        self.bytes_in += bytes as u64;
    }

    /// The request ended this way; `reason` says why when it did not succeed.
    pub fn finish(&mut self, outcome: Outcome, reason: Option<&str>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let reason = reason.unwrap_or("");
        // /metrics: by HTTP status when one came back, else by outcome.
        crate::telemetry::outbound_request(
            &self.provider,
            (self.status != 0).then_some(self.status),
            outcome.as_str(),
        );
        tracing::info!(
            target: "bpr::audit::http",
            provider = %self.provider,
            request_id = self.id,
            method = %self.method,
            host = self.host.as_str(),
            port = self.port,
            path = self.path.as_str(),
            status = self.status,
            outcome = outcome.as_str(),
            dispatched = self.dispatched,
            bytes_out = self.bytes_out,
            bytes_in = self.bytes_in,
            duration_ms,
            reason,
            "outbound request"
        );
    }
}

impl Drop for AuditRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(
                Outcome::Abandoned,
                Some("dropped before it ended (by the guest, or the call's deadline)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_finished_once_and_ids_differ() {
        let mut a = AuditRecord::new("p", "GET", "example.com", 443, "/x");
        let b = AuditRecord::new("p", "GET", "example.com", 443, "/x");
        assert_ne!(a.id(), b.id());
        a.finish(Outcome::Sent, None);
        assert!(a.finished);
        a.finish(Outcome::Failed, Some("again"));
        drop(a);
    }
}
