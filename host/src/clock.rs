//! The host's one clock helper: wall-clock time as unix seconds, what every
//! record, cache row and token expiry stores.

/// Unix seconds now (0 before 1970, which a host clock never is).
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// [`unix_now`] for fields stored unsigned.
pub fn unix_now_u64() -> u64 {
    u64::try_from(unix_now()).unwrap_or(0)
}
