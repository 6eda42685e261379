//! AWS region codes this component knows, so that an unknown one is refused
//! by name at once (as `region-unavailable`, which moves the host to its next
//! candidate) instead of being sent to a host name that does not exist, or to
//! a stand-in that answers 500 with an HTML page the host would retry.
//!
//! The list is AWS's public regions (commercial, GovCloud, China) as listed in
//! the AWS General Reference, "Regional endpoints", 2025. A region AWS opened
//! since is accepted once the operator names it in the `regions` setting.

use provider_sdk::{Error, settings};

/// Every region code AWS has published.
pub const KNOWN: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// True when `region` is a published AWS region or named in `regions`.
pub fn is_known(region: &str) -> bool {
    KNOWN.contains(&region) || settings::list("regions").iter().any(|r| r == region)
}

/// `region-unavailable` naming `region`, unless it is known.
pub fn check_known(region: &str) -> Result<(), Error> {
    if is_known(region) {
        Ok(())
    } else {
        Err(Error::RegionUnavailable(format!(
            "`{region}` is not an AWS region this provider knows (e.g. us-east-1, eu-west-1); \
             if AWS opened it recently, add it to the `regions` setting"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::KNOWN;

    #[test]
    fn known_regions_are_sorted_well_formed_codes() {
        let mut sorted = KNOWN.to_vec();
        sorted.sort();
        assert_eq!(sorted, KNOWN);
        for r in KNOWN {
            assert!(crate::ec2::check_region(r).is_ok(), "{r}");
        }
    }
}
