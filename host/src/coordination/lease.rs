//! What acquiring, renewing, releasing and checking a lease do, as pure
//! functions of the row as read and the time: [`super::LeaseStore`] runs each
//! inside one transaction and writes the row they return.

/// One lease row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// Who holds (or last held) it.
    pub owner: String,
    /// Fencing token: strictly increases each time the lease is granted to
    /// an owner that did not hold it unexpired.
    pub token: i64,
    /// When it lapses unless renewed (ms since 1970); 0 once released.
    pub expires_at_ms: i64,
}

/// A lease held: what a holder presents to renew, release and check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (`supervisor`, ...).
    pub name: String,
    /// This holder.
    pub owner: String,
    /// The token it was granted with.
    pub token: i64,
    /// When it lapses unless renewed (ms since 1970).
    pub expires_at_ms: i64,
}

/// The outcome of [`acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Granted (or renewed, when `owner` held it unexpired): write this row.
    Granted(LeaseRow),
    /// Someone else holds it unexpired: nothing to write.
    Held(LeaseRow),
}

/// Take the lease for `owner` at `now_ms` for `ttl_ms`: free, expired or
/// released rows are taken with the next token; a row `owner` holds
/// unexpired is extended with the same token; another owner's unexpired row
/// is left alone.
pub fn acquire(row: Option<&LeaseRow>, owner: &str, now_ms: i64, ttl_ms: i64) -> Acquired {
    let expires_at_ms = now_ms.saturating_add(ttl_ms);
    match row {
        None => Acquired::Granted(LeaseRow {
            owner: owner.to_string(),
            token: 1,
            expires_at_ms,
        }),
        Some(r) if r.expires_at_ms > now_ms && r.owner == owner => Acquired::Granted(LeaseRow {
            expires_at_ms,
            ..r.clone()
        }),
        Some(r) if r.expires_at_ms > now_ms => Acquired::Held(r.clone()),
        // Lapsed: the next holder (even the same owner after a pause) gets a
        // new token, so whatever ran under the old one is fenced.
        Some(r) => Acquired::Granted(LeaseRow {
            owner: owner.to_string(),
            token: r.token.saturating_add(1),
            expires_at_ms,
        }),
    }
}

/// Take the lease from a holder known to be dead although its row has not
/// expired (on one host the kernel says so: the OS file lock a live holder
/// would keep is free). Always granted, with the next token, so whatever the
/// dead holder left half-done is fenced.
pub fn take_over(row: Option<&LeaseRow>, owner: &str, now_ms: i64, ttl_ms: i64) -> LeaseRow {
    LeaseRow {
        owner: owner.to_string(),
        token: row.map_or(1, |r| r.token.saturating_add(1)),
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    }
}

/// Why a held lease no longer stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// Nobody's row: it was deleted.
    #[error("the lease row is gone")]
    Gone,
    /// Another owner (or a later holding of the same owner) has it now.
    #[error("{owner} holds it now with token {token}")]
    TakenBy {
        /// The current holder.
        owner: String,
        /// Its fencing token.
        token: i64,
    },
    /// It lapsed without renewal.
    #[error("it expired {ago_ms} ms ago")]
    Expired {
        /// How long ago.
        ago_ms: i64,
    },
}

/// Why a held lease no longer stands, or `None` when `lease` is still the
/// current, unexpired holding at `now_ms`.
pub fn lost(row: Option<&LeaseRow>, lease: &Lease, now_ms: i64) -> Option<Lost> {
    match row {
        None => Some(Lost::Gone),
        Some(r) if r.token != lease.token || r.owner != lease.owner => Some(Lost::TakenBy {
            owner: r.owner.clone(),
            token: r.token,
        }),
        Some(r) if r.expires_at_ms <= now_ms => Some(Lost::Expired {
            ago_ms: now_ms.saturating_sub(r.expires_at_ms),
        }),
        Some(_) => None,
    }
}

/// Renew `lease` at `now_ms` for `ttl_ms`: the new row, or why it was lost
/// (a lapsed lease is never renewed: another owner may have acted in the
/// meantime, or will, believing it free).
pub fn renew(
    row: Option<&LeaseRow>,
    lease: &Lease,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<LeaseRow, Lost> {
    match lost(row, lease, now_ms) {
        Some(why) => Err(why),
        None => Ok(LeaseRow {
            owner: lease.owner.clone(),
            token: lease.token,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
        }),
    }
}

/// Release `lease`: the row with its expiry at 0 when `lease` still holds it
/// (the token stays, so the next holder's is higher), else nothing to write.
pub fn release(row: Option<&LeaseRow>, lease: &Lease) -> Option<LeaseRow> {
    match row {
        Some(r) if r.token == lease.token && r.owner == lease.owner => Some(LeaseRow {
            expires_at_ms: 0,
            ..r.clone()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(owner: &str, token: i64, expires_at_ms: i64) -> LeaseRow {
        LeaseRow {
            owner: owner.into(),
            token,
            expires_at_ms,
        }
    }

    fn lease_of(row: &LeaseRow) -> Lease {
        Lease {
            name: "supervisor".into(),
            owner: row.owner.clone(),
            token: row.token,
            expires_at_ms: row.expires_at_ms,
        }
    }

    #[test]
    fn a_free_lease_is_granted_with_token_one() {
        assert_eq!(
            acquire(None, "a", 1_000, 500),
            Acquired::Granted(held("a", 1, 1_500))
        );
    }

    #[test]
    fn an_unexpired_lease_of_another_owner_is_not_granted() {
        let row = held("a", 3, 2_000);
        assert_eq!(acquire(Some(&row), "b", 1_999, 500), Acquired::Held(row));
    }

    #[test]
    fn the_holder_acquiring_again_extends_its_lease_with_the_same_token() {
        let row = held("a", 3, 2_000);
        assert_eq!(
            acquire(Some(&row), "a", 1_500, 1_000),
            Acquired::Granted(held("a", 3, 2_500))
        );
    }

    #[test]
    fn an_expired_lease_goes_to_the_next_owner_with_a_higher_token() {
        let row = held("a", 3, 2_000);
        // Expiry is exclusive: at exactly 2000 ms the lease is over.
        assert_eq!(
            acquire(Some(&row), "b", 2_000, 500),
            Acquired::Granted(held("b", 4, 2_500))
        );
    }

    #[test]
    fn a_holder_that_let_its_lease_lapse_gets_a_new_token_when_it_takes_it_again() {
        let row = held("a", 3, 2_000);
        assert_eq!(
            acquire(Some(&row), "a", 5_000, 500),
            Acquired::Granted(held("a", 4, 5_500))
        );
    }

    #[test]
    fn tokens_strictly_increase_over_any_sequence_of_handovers() {
        let mut row: Option<LeaseRow> = None;
        let mut last = 0;
        let owners = ["a", "b", "a", "c", "c", "b"];
        for (i, owner) in owners.iter().enumerate() {
            // Each owner comes after the previous lease lapsed.
            let now = (i as i64 + 1) * 10_000;
            let Acquired::Granted(next) = acquire(row.as_ref(), owner, now, 1_000) else {
                panic!("lapsed lease not granted to {owner}");
            };
            assert!(next.token > last, "token {} after {last}", next.token);
            last = next.token;
            row = Some(next);
        }
    }

    #[test]
    fn renewal_extends_a_current_lease_and_refuses_a_lapsed_or_taken_one() {
        let row = held("a", 3, 2_000);
        let lease = lease_of(&row);
        assert_eq!(
            renew(Some(&row), &lease, 1_900, 1_000),
            Ok(held("a", 3, 2_900))
        );
        let lapsed = renew(Some(&row), &lease, 2_000, 1_000).unwrap_err();
        assert!(matches!(lapsed, Lost::Expired { .. }), "{lapsed}");
        let taken = held("b", 4, 3_000);
        let why = renew(Some(&taken), &lease, 1_900, 1_000).unwrap_err();
        assert_eq!(why.to_string(), "b holds it now with token 4");
        assert!(renew(None, &lease, 1_900, 1_000).is_err());
    }

    #[test]
    fn a_paused_holder_is_fenced_once_another_owner_took_the_lease() {
        // a holds token 3 until 2000; it is paused; b takes the lease at
        // 2500; a resumes at 2600 and checks before acting.
        let a = lease_of(&held("a", 3, 2_000));
        let Acquired::Granted(b_row) = acquire(Some(&held("a", 3, 2_000)), "b", 2_500, 1_000)
        else {
            panic!("b did not get the lapsed lease");
        };
        assert!(lost(Some(&b_row), &a, 2_600).is_some());
        assert!(lost(Some(&b_row), &lease_of(&b_row), 2_600).is_none());
    }

    #[test]
    fn taking_over_from_a_dead_holder_grants_the_next_token_before_expiry() {
        let row = held("a", 3, 9_000);
        assert_eq!(take_over(Some(&row), "b", 1_000, 500), held("b", 4, 1_500));
        assert_eq!(take_over(None, "b", 1_000, 500), held("b", 1, 1_500));
    }

    #[test]
    fn release_keeps_the_token_so_the_next_holder_gets_a_higher_one() {
        let row = held("a", 3, 2_000);
        let released = release(Some(&row), &lease_of(&row)).expect("released");
        assert_eq!(released, held("a", 3, 0));
        assert_eq!(
            acquire(Some(&released), "b", 1_000, 500),
            Acquired::Granted(held("b", 4, 1_500))
        );
        // A stale holder's release changes nothing.
        assert_eq!(release(Some(&held("b", 4, 9_000)), &lease_of(&row)), None);
    }
}
