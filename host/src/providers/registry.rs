//! Name → current version of each provider, plus why a file was refused.
//! A swap replaces the `Arc`; calls in flight keep the version they started on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::loader::LoadedProvider;

/// One provider's slot.
#[derive(Default)]
struct Slot {
    current: Option<Arc<LoadedProvider>>,
    refused: Option<Refusal>,
}

/// Why the newest file of a provider was not loaded.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The file.
    pub path: PathBuf,
    /// The reason (names file and cause).
    pub reason: String,
    /// When.
    pub at: SystemTime,
}

/// The state shown by `bpr providers list`.
#[derive(Debug, Clone)]
pub enum ProviderState {
    /// Loaded and serving.
    Loaded,
    /// Serving an older version; the newest file was refused.
    ServingPrevious(String),
    /// Nothing loaded; the file was refused.
    Refused(String),
}

/// A provider's status.
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    /// Provider name.
    pub name: String,
    /// The version serving, if any.
    pub current: Option<Arc<LoadedProvider>>,
    /// State.
    pub state: ProviderState,
}

/// All providers.
#[derive(Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<String, Slot>>,
}

impl Registry {
    /// The serving version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedProvider>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(name).and_then(|s| s.current.clone())
    }

    /// Install a newly loaded version; returns the one it replaced.
    pub fn install(&self, p: LoadedProvider) -> Option<Arc<LoadedProvider>> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(p.name.clone()).or_default();
        slot.refused = None;
        slot.current.replace(Arc::new(p))
    }

    /// Record that the newest file of `name` was refused; the previous
    /// version (if any) keeps serving.
    pub fn refuse(&self, name: &str, refusal: Refusal) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.entry(name.to_string()).or_default().refused = Some(refusal);
    }

    /// Remove `name` (its file is gone).
    pub fn remove(&self, name: &str) -> Option<Arc<LoadedProvider>> {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.remove(name).and_then(|s| s.current)
    }

    /// Names of serving providers.
    pub fn names(&self) -> Vec<String> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter(|(_, s)| s.current.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every provider with its state.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(name, s)| ProviderStatus {
                name: name.clone(),
                current: s.current.clone(),
                state: match (&s.current, &s.refused) {
                    (_, None) => ProviderState::Loaded,
                    (Some(_), Some(r)) => ProviderState::ServingPrevious(r.reason.clone()),
                    (None, Some(r)) => ProviderState::Refused(r.reason.clone()),
                },
            })
            .collect()
    }
}
