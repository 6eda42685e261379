//! Selecting the best keys without sorting every survivor: a bounded top-k
//! and, for high availability, the cheapest key per location.
//!
//! A key is the packed sort key of one candidate (see `check.rs`); smaller is
//! better, and it carries the row position in its low bits.

/// The row position packed in a sort key.
pub(super) fn position_of(key: u128) -> usize {
    ((key >> 1) & u128::from(u32::MAX)) as usize
}

/// Where an offer runs, as ids: `(location, zone)`.
pub(super) struct Place {
    pub location: u32,
    pub zone: u32,
}

/// [`FailureDomain::is_distinct_from`](super::FailureDomain::is_distinct_from) on ids: a location is a
/// `(provider, region)` pair.
pub(super) fn distinct(a: &Place, b: &Place) -> bool {
    a.location != b.location || (a.zone != 0 && b.zone != 0 && a.zone != b.zone)
}

/// The `k` smallest keys seen, without keeping every key: keys at or above
/// the current k-th smallest are rejected by one comparison.
pub(super) struct TopK {
    k: usize,
    keys: Vec<u128>,
    /// Every key kept is below this.
    threshold: u128,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            keys: Vec::with_capacity(4 * k.max(64)),
            threshold: u128::MAX,
        }
    }

    #[inline]
    pub fn offer(&mut self, key: u128) {
        if key < self.threshold {
            self.keys.push(key);
            if self.keys.len() == self.keys.capacity() {
                self.shrink();
            }
        }
    }

    /// Keeps the k smallest; the largest of them becomes the threshold.
    fn shrink(&mut self) {
        if self.keys.len() > self.k {
            self.keys.select_nth_unstable(self.k - 1);
            self.keys.truncate(self.k);
            self.threshold = self.keys.iter().copied().max().unwrap_or(u128::MAX);
        }
    }

    pub fn into_sorted(mut self) -> Vec<u128> {
        self.shrink();
        self.keys.sort_unstable();
        self.keys
    }
}

/// Per `(provider, region)`: the cheapest key, and for zoned offers the
/// cheapest key and the cheapest key in another zone. Enough to find the
/// cheapest offer distinct from any winner without keeping every key.
#[derive(Clone, Copy)]
pub(super) struct LocationBest {
    any: u128,
    zoned: u128,
    zoned_zone: u32,
    other_zone: u128,
}

impl LocationBest {
    pub const EMPTY: LocationBest = LocationBest {
        any: u128::MAX,
        zoned: u128::MAX,
        zoned_zone: 0,
        other_zone: u128::MAX,
    };

    #[inline]
    pub fn update(&mut self, key: u128, zone: u32) {
        self.any = self.any.min(key);
        if zone == 0 {
            return;
        }
        if key < self.zoned {
            if zone != self.zoned_zone {
                self.other_zone = self.zoned;
            }
            self.zoned = key;
            self.zoned_zone = zone;
        } else if zone != self.zoned_zone && key < self.other_zone {
            self.other_zone = key;
        }
    }
}

/// The cheapest key distinct from `winner` (see
/// [`FailureDomain::is_distinct_from`](super::FailureDomain::is_distinct_from)).
pub(super) fn cheapest_distinct(locations: &[LocationBest], winner: &Place) -> Option<u128> {
    let elsewhere = locations
        .iter()
        .enumerate()
        .filter(|&(location, _)| location != winner.location as usize)
        .map(|(_, best)| best.any);
    let here = locations.get(winner.location as usize).map(|best| {
        // The winner is its location's cheapest, so when it has a zone it is
        // `zoned` and `other_zone` is the cheapest in a different zone.
        if winner.zone != 0 && best.zoned_zone == winner.zone {
            best.other_zone
        } else {
            u128::MAX
        }
    });
    elsewhere.chain(here).min().filter(|&key| key != u128::MAX)
}
