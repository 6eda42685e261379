//! Checking offers: the per-request lookup tables and the branch-free test
//! of one row against every [`Rule`], and the sort key of a candidate.

use super::catalog::{
    ARM64, CONFIDENTIAL, Catalog, FRACTIONAL_GPU, INVALID, OPERATOR_OWNED, PROMOTIONAL, Row,
    SHARED_CPU,
};
use super::geography::geography_of;
use super::offer::Arch;
use super::ranking::Candidate;
use super::request::{Mode, Policy, Request};
use super::rules::{Rule, gpu_model_matches};
use super::select::{Place, position_of};

/// Everything about the request that can be decided per provider, region or
/// GPU model, looked up by id in the hot loop.
pub(super) struct Context<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) policy: &'a Policy,
    min_vcpus: f32,
    min_memory: f32,
    min_storage: f32,
    min_gpus: f32,
    floor_vcpus: f32,
    floor_memory: f32,
    required_flags: u8,
    /// Flags that make an offer fail (shared CPU, promotional, fractional).
    refused_flags: u8,
    arch_mask: u8,
    arch_value: u8,
    /// `OPERATOR_OWNED` in `mode = "local"`, else 0.
    local_only: u8,
    /// Per GPU model id: the `GpuModel` rule bit when it does not match.
    gpu_fails: Vec<u32>,
    /// Per region id: `Region`, `Geography` and `DefaultRegion` bits.
    region_fails: Vec<u32>,
    /// Per provider id: the `ExcludedProvider` bit.
    provider_fails: Vec<u32>,
    /// Per provider id: position in `preferred_providers`, 255 if absent.
    preference: Vec<u8>,
    pub(super) spot_allowed: bool,
    pub(super) cap: f64,
}

pub(super) const NOT_PREFERRED: u8 = u8::MAX;

pub(super) fn bit(rule: Rule) -> u32 {
    1 << rule as u32
}

impl<'a> Context<'a> {
    pub(super) fn new(
        catalog: &'a Catalog,
        request: &'a Request,
        policy: &'a Policy,
    ) -> Context<'a> {
        let gpu_fails = catalog
            .gpu_models
            .iter()
            .enumerate()
            .map(|(id, model)| match &request.gpu_model {
                Some(required) if id == 0 || !gpu_model_matches(required, model) => {
                    bit(Rule::GpuModel)
                }
                _ => 0,
            })
            .collect();
        let use_defaults = request.regions.is_empty() && request.geography.is_none();
        let region_fails = catalog
            .regions
            .iter()
            .map(|region| {
                let mut fails = 0;
                if !request.regions.is_empty() && !request.regions.contains(region) {
                    fails |= bit(Rule::Region);
                }
                if request
                    .geography
                    .is_some_and(|geo| geography_of(region) != Some(geo))
                {
                    fails |= bit(Rule::Geography);
                }
                if use_defaults
                    && !policy.default_regions.is_empty()
                    && !policy.default_regions.contains(region)
                {
                    fails |= bit(Rule::DefaultRegion);
                }
                fails
            })
            .collect();
        let provider_fails = catalog
            .providers
            .iter()
            .map(|p| {
                let mut fails = 0;
                if !request.providers.is_empty() && !request.providers.contains(p) {
                    fails |= bit(Rule::Provider);
                }
                if policy.excluded_providers.contains(p) {
                    fails |= bit(Rule::ExcludedProvider);
                }
                fails
            })
            .collect();
        let preference = catalog
            .providers
            .iter()
            .map(|p| {
                policy
                    .preferred_providers
                    .iter()
                    .position(|q| q == p)
                    .map_or(NOT_PREFERRED, |i| i.min(NOT_PREFERRED as usize - 1) as u8)
            })
            .collect();
        let (floor_vcpus, floor_memory) = request.tier.map_or((0.0, 0.0), |t| t.vm_floor());
        let required_flags = if request.confidential {
            CONFIDENTIAL
        } else {
            0
        };
        let mut refused_flags = 0;
        if request.dedicated_cpu {
            refused_flags |= SHARED_CPU;
        }
        if !policy.allow_promotional {
            refused_flags |= PROMOTIONAL;
        }
        // Fractional GPUs only matter when they would count towards a GPU
        // requirement; a CPU workload may run on any machine.
        if request.min_gpus > 0.0 && !policy.allow_fractional_gpus {
            refused_flags |= FRACTIONAL_GPU;
        }
        let (arch_mask, arch_value) = match request.arch {
            None => (0, 0),
            Some(Arch::Arm64) => (ARM64, ARM64),
            Some(Arch::X86_64) => (ARM64, 0),
        };
        let local_only = if policy.mode == Mode::Local {
            OPERATOR_OWNED
        } else {
            0
        };
        Context {
            catalog,
            policy,
            min_vcpus: request.min_vcpus,
            min_memory: request.min_memory_gib,
            min_storage: request.min_storage_gib,
            min_gpus: request.min_gpus,
            floor_vcpus,
            floor_memory,
            required_flags,
            refused_flags,
            arch_mask,
            arch_value,
            local_only,
            gpu_fails,
            region_fails,
            provider_fails,
            preference,
            spot_allowed: policy.allow_spot_instances && request.allow_spot,
            cap: policy.max_cost_per_hour.unwrap_or(f64::INFINITY),
        }
    }

    /// A bit per rule `row` fails (bit `Rule as u32`), 0 when it satisfies
    /// every rule but `MaxCost`, which needs the prices. Branch-free: in a quarter million offers the outcomes are
    /// unpredictable, and mispredicted branches cost more than the checks.
    #[inline]
    pub(super) fn failed_rules(&self, row: &Row) -> u32 {
        let flags = row.flags;
        let bit = |failed: bool, rule: Rule| u32::from(failed) << rule as u32;
        bit(flags & INVALID != 0, Rule::InvalidOffer)
            | bit(row.vcpus < self.min_vcpus, Rule::Vcpus)
            | bit(row.memory < self.min_memory, Rule::Memory)
            | bit(row.storage < self.min_storage, Rule::Storage)
            | bit(row.gpus < self.min_gpus, Rule::GpuCount)
            | self.gpu_fails[row.gpu_model as usize]
            | bit(
                flags & self.required_flags != self.required_flags,
                Rule::Confidential,
            )
            | bit(flags & self.arch_mask != self.arch_value, Rule::Arch)
            | bit(
                flags & self.refused_flags & SHARED_CPU != 0,
                Rule::SharedCpu,
            )
            | self.region_fails[row.region as usize]
            | bit(
                row.vcpus < self.floor_vcpus || row.memory < self.floor_memory,
                Rule::TierFloor,
            )
            | bit(flags & self.local_only != self.local_only, Rule::NotLocal)
            | self.provider_fails[row.provider as usize]
            | bit(
                flags & self.refused_flags & PROMOTIONAL != 0,
                Rule::Promotional,
            )
            | bit(
                flags & self.refused_flags & FRACTIONAL_GPU != 0,
                Rule::FractionalGpu,
            )
    }

    /// Packs the sort key (see the module docs). Bits, high to low: group (1),
    /// price (64), preference (8), tie-break order (32), spot (1). Prices are
    /// positive and finite here, so their IEEE bits sort like the numbers.
    #[inline]
    pub(super) fn key(&self, row: &Row, position: u32, price: f64, spot: bool) -> u128 {
        let preference = self.preference[row.provider as usize];
        let group = self.policy.mode == Mode::Preferred && preference == NOT_PREFERRED;
        (u128::from(group) << 105)
            | (u128::from(price.to_bits()) << 41)
            | (u128::from(preference) << 33)
            | (u128::from(position) << 1)
            | u128::from(spot)
    }

    pub(super) fn place(&self, key: u128) -> Place {
        let cold = &self.catalog.cold[position_of(key)];
        Place {
            location: cold.location,
            zone: cold.zone,
        }
    }

    pub(super) fn offer_index(&self, key: u128) -> usize {
        self.catalog.by_order[position_of(key)] as usize
    }

    pub(super) fn candidate(&self, key: u128, rank: usize, ha_secondary: bool) -> Candidate {
        let position = position_of(key);
        let offer = self.catalog.offers[self.catalog.by_order[position] as usize].clone();
        let row = &self.catalog.rows[position];
        let cold = &self.catalog.cold[position];
        let spot = key & 1 == 1;
        let hourly_usd = if spot { cold.spot } else { cold.hourly };
        let preferred = self.preference[row.provider as usize] != NOT_PREFERRED;
        let mut why = format!(
            "rank {}: {} price {hourly_usd:.4} $/h",
            rank + 1,
            if spot { "spot" } else { "on-demand" }
        );
        if rank == 0 && self.policy.mode != Mode::Preferred {
            why.push_str(", cheapest offer meeting every rule");
        }
        if self.policy.mode == Mode::Local {
            why.push_str(", the operator's own capacity");
        }
        if preferred {
            why.push_str(match self.policy.mode {
                Mode::Preferred => ", preferred provider ranked first",
                Mode::AutoCheapest | Mode::Local => ", preferred provider",
            });
        }
        if ha_secondary {
            why.push_str(", cheapest in a failure domain distinct from the first");
        }
        if offer.from_snapshot {
            why.push_str(", price from embedded snapshot");
        }
        Candidate {
            offer,
            spot,
            hourly_usd,
            preferred,
            why,
        }
    }
}
