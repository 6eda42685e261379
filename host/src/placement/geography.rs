//! Region codes -> coarse geographies, so a customer can ask for "eu" instead
//! of naming regions of every provider.
//!
//! Geographies are physical locations, not legal zones: `eu` is geographic
//! Europe (it includes London and Zurich). A region code this table does not
//! know has no geography and never matches a geography preference; the
//! explanation then names it, so a new region is one line here.
//!
//! Sources: the providers' public region lists (AWS and GCP region naming,
//! Azure `armRegionName`, DigitalOcean slugs, Vultr location ids).

use serde::{Deserialize, Serialize};

/// A coarse geography a customer can ask for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Geography {
    /// United States (including Hawaii and GovCloud).
    Us,
    /// Canada.
    Canada,
    /// Mexico, Central and South America.
    Latam,
    /// Geographic Europe, including the UK and Switzerland.
    Europe,
    /// Middle East, including Israel.
    MiddleEast,
    /// Africa.
    Africa,
    /// Asia, including India.
    Asia,
    /// Australia and New Zealand.
    Oceania,
}

impl Geography {
    /// Every geography, in declaration order.
    pub const ALL: [Geography; 8] = [
        Geography::Us,
        Geography::Canada,
        Geography::Latam,
        Geography::Europe,
        Geography::MiddleEast,
        Geography::Africa,
        Geography::Asia,
        Geography::Oceania,
    ];

    /// The short code used in configuration and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Geography::Us => "us",
            Geography::Canada => "ca",
            Geography::Latam => "latam",
            Geography::Europe => "eu",
            Geography::MiddleEast => "me",
            Geography::Africa => "af",
            Geography::Asia => "asia",
            Geography::Oceania => "oc",
        }
    }

    /// Parses a code from [`Geography::code`] (case-insensitive).
    pub fn from_code(code: &str) -> Option<Geography> {
        Geography::ALL
            .into_iter()
            .find(|g| g.code().eq_ignore_ascii_case(code))
    }
}

impl std::fmt::Display for Geography {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

use Geography::*;

/// Region codes without a dash, matched exactly after trailing digits are
/// removed (`nyc3` -> `nyc`): Azure, DigitalOcean and Vultr.
const EXACT: &[(&str, Geography)] = &[
    // Azure
    ("eastus", Us),
    ("eastus2", Us),
    ("westus", Us),
    ("westus2", Us),
    ("westus3", Us),
    ("centralus", Us),
    ("northcentralus", Us),
    ("southcentralus", Us),
    ("westcentralus", Us),
    ("canadacentral", Canada),
    ("canadaeast", Canada),
    ("brazilsouth", Latam),
    ("brazilsoutheast", Latam),
    ("mexicocentral", Latam),
    ("chilecentral", Latam),
    ("northeurope", Europe),
    ("westeurope", Europe),
    ("uksouth", Europe),
    ("ukwest", Europe),
    ("francecentral", Europe),
    ("francesouth", Europe),
    ("germanywestcentral", Europe),
    ("germanynorth", Europe),
    ("switzerlandnorth", Europe),
    ("switzerlandwest", Europe),
    ("norwayeast", Europe),
    ("norwaywest", Europe),
    ("swedencentral", Europe),
    ("swedensouth", Europe),
    ("polandcentral", Europe),
    ("italynorth", Europe),
    ("spaincentral", Europe),
    ("austriaeast", Europe),
    ("uaenorth", MiddleEast),
    ("uaecentral", MiddleEast),
    ("qatarcentral", MiddleEast),
    ("israelcentral", MiddleEast),
    ("southafricanorth", Africa),
    ("southafricawest", Africa),
    ("eastasia", Asia),
    ("southeastasia", Asia),
    ("japaneast", Asia),
    ("japanwest", Asia),
    ("koreacentral", Asia),
    ("koreasouth", Asia),
    ("centralindia", Asia),
    ("southindia", Asia),
    ("westindia", Asia),
    ("jioindiawest", Asia),
    ("jioindiacentral", Asia),
    ("indonesiacentral", Asia),
    ("malaysiawest", Asia),
    ("taiwannorth", Asia),
    ("australiaeast", Oceania),
    ("australiasoutheast", Oceania),
    ("australiacentral", Oceania),
    ("australiacentral2", Oceania),
    ("newzealandnorth", Oceania),
    // DigitalOcean (digits stripped: nyc1..3, sfo1..3, ams2..3...)
    ("nyc", Us),
    ("sfo", Us),
    ("atl", Us),
    ("ric", Us),
    ("tor", Canada),
    ("ams", Europe),
    ("lon", Europe),
    ("fra", Europe),
    ("sgp", Asia),
    ("blr", Asia),
    ("syd", Oceania),
    // Vultr (atl, ams, fra, sgp, blr, syd as above)
    ("ewr", Us),
    ("ord", Us),
    ("dfw", Us),
    ("sea", Us),
    ("lax", Us),
    ("mia", Us),
    ("sjc", Us),
    ("hnl", Us),
    ("yto", Canada),
    ("mex", Latam),
    ("sao", Latam),
    ("scl", Latam),
    ("lhr", Europe),
    ("cdg", Europe),
    ("mad", Europe),
    ("waw", Europe),
    ("sto", Europe),
    ("man", Europe),
    ("tlv", MiddleEast),
    ("jnb", Africa),
    ("nrt", Asia),
    ("itm", Asia),
    ("icn", Asia),
    ("bom", Asia),
    ("del", Asia),
    ("mel", Oceania),
];

/// Prefixes of dashed region codes (AWS `eu-west-1`, GCP `europe-west4`),
/// longest match first where two overlap.
const PREFIXES: &[(&str, Geography)] = &[
    // AWS Oceania regions live under `ap-`; they must win over `ap-`.
    ("ap-southeast-2", Oceania), // Sydney
    ("ap-southeast-4", Oceania), // Melbourne
    ("ap-southeast-6", Oceania), // New Zealand
    ("northamerica-northeast", Canada),
    ("northamerica-south", Latam),
    ("us-", Us),
    ("ca-", Canada),
    ("mx-", Latam),
    ("sa-", Latam),
    ("southamerica-", Latam),
    ("eu-", Europe),
    ("europe-", Europe),
    ("me-", MiddleEast),
    ("il-", MiddleEast),
    ("af-", Africa),
    ("africa-", Africa),
    ("ap-", Asia),
    ("cn-", Asia),
    ("asia-", Asia),
    ("australia-", Oceania),
];

/// The geography of a region code of any provider, or `None` when unknown.
///
/// Region codes are globally distinct enough that the provider is not
/// needed: AWS and GCP share prefixes (`us-`, `me-`) with the same meaning.
pub fn geography_of(region: &str) -> Option<Geography> {
    if region.contains('-') {
        return PREFIXES
            .iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map(|&(_, geo)| geo);
    }
    if let Some(&(_, geo)) = EXACT.iter().find(|(code, _)| *code == region) {
        return Some(geo);
    }
    let stem = region.trim_end_matches(|c: char| c.is_ascii_digit());
    EXACT
        .iter()
        .find(|(code, _)| *code == stem)
        .map(|&(_, geo)| geo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_of_every_provider_map_to_their_geography() {
        let cases = [
            ("us-east-1", Some(Us)),
            ("us-gov-west-1", Some(Us)),
            ("eu-central-1", Some(Europe)),
            ("ap-southeast-2", Some(Oceania)),
            ("ap-southeast-1", Some(Asia)),
            ("ap-northeast-1", Some(Asia)),
            ("ca-central-1", Some(Canada)),
            ("sa-east-1", Some(Latam)),
            ("me-south-1", Some(MiddleEast)),
            ("il-central-1", Some(MiddleEast)),
            ("af-south-1", Some(Africa)),
            ("us-central1", Some(Us)),
            ("europe-west4", Some(Europe)),
            ("asia-northeast1", Some(Asia)),
            ("australia-southeast1", Some(Oceania)),
            ("northamerica-northeast1", Some(Canada)),
            ("southamerica-east1", Some(Latam)),
            ("me-west1", Some(MiddleEast)),
            ("eastus", Some(Us)),
            ("westeurope", Some(Europe)),
            ("uksouth", Some(Europe)),
            ("australiaeast", Some(Oceania)),
            ("australiacentral2", Some(Oceania)),
            ("japaneast", Some(Asia)),
            ("nyc3", Some(Us)),
            ("tor1", Some(Canada)),
            ("ams3", Some(Europe)),
            ("sgp1", Some(Asia)),
            ("syd1", Some(Oceania)),
            ("ewr", Some(Us)),
            ("yto", Some(Canada)),
            ("jnb", Some(Africa)),
            ("mel", Some(Oceania)),
            ("moon-base-1", None),
            ("atlantis", None),
        ];
        for (region, expected) in cases {
            assert_eq!(geography_of(region), expected, "region {region}");
        }
    }

    #[test]
    fn geography_codes_round_trip_and_ignore_case() {
        for geo in Geography::ALL {
            assert_eq!(Geography::from_code(geo.code()), Some(geo));
        }
        assert_eq!(Geography::from_code("EU"), Some(Europe));
        assert_eq!(Geography::from_code("europe"), None);
    }
}
