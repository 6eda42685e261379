//! Caps on what a component returns. The memory cap bounds what a guest can
//! build, but not what the host then keeps, stores and prints: 400,000 offers
//! or ten 10 MB strings fit in a guest's memory and would go on into the price
//! cache, the database and the terminal. Every answer is measured once it is
//! lifted — counts of offers and instances, every list inside a record, every
//! string, and all strings together — and one over a cap fails the call with
//! [`crate::CallError::ReturnedTooMuch`], naming the setting that raises it.

use crate::runtime::bindings::wit::{
    Cluster, ClusterCredentials, Instance, Offer, ProviderInfo, ResourceRef,
};

/// The caps of one provider. Operator-settable in its `[providers.<name>]`
/// section; the defaults sit far above what a real cloud returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnLimits {
    /// Offers one `list-offers` may return (`max_returned_offers`).
    /// Default: 200,000 (a whole public cloud catalogue is tens of thousands).
    pub max_offers: usize,
    /// Instances one `list-instances` may return (`max_returned_instances`).
    /// Default: 10,000.
    pub max_instances: usize,
    /// Items of any list inside a record: labels, resources, regions,
    /// settings... (`max_returned_list_items`). Default: 1,000.
    pub max_list_items: usize,
    /// Bytes of any one string (`max_returned_string_kib`). Default: 64 KiB.
    pub max_string_bytes: usize,
    /// Bytes of all strings of one answer together (`max_returned_mib`).
    /// Default: 64 MiB.
    pub max_total_bytes: usize,
}

impl Default for ReturnLimits {
    fn default() -> Self {
        Self {
            max_offers: 200_000,
            max_instances: 10_000,
            max_list_items: 1_000,
            max_string_bytes: 64 << 10,
            max_total_bytes: 64 << 20,
        }
    }
}

/// An answer over a cap: what, the cap, and the setting that raises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excess {
    /// What was too large, and where in the answer.
    pub what: String,
    /// The cap, in words.
    pub cap: String,
    /// The `[providers.<name>]` key that sets the cap.
    pub setting: &'static str,
}

impl ReturnLimits {
    /// Check a `list-offers` answer.
    pub fn check_offers(&self, offers: &[Offer]) -> Result<(), Excess> {
        let mut m = Meter::new(self);
        m.count(
            "offers",
            offers.len(),
            self.max_offers,
            "max_returned_offers",
        )?;
        for (i, o) in offers.iter().enumerate() {
            let at = |field: &str| format!("offer {i} `{field}`");
            m.string(&at, "instance-type", &o.instance_type)?;
            m.string(&at, "region", &o.region)?;
            m.option(&at, "zone", &o.zone)?;
            m.option(&at, "gpu-model", &o.gpu_model)?;
            m.string(&at, "source.source", &o.source.source)?;
        }
        Ok(())
    }

    /// Check a `list-instances` answer.
    pub fn check_instances(&self, instances: &[Instance]) -> Result<(), Excess> {
        let mut m = Meter::new(self);
        m.count(
            "instances",
            instances.len(),
            self.max_instances,
            "max_returned_instances",
        )?;
        for (i, instance) in instances.iter().enumerate() {
            m.instance(&format!("instance {i}"), instance)?;
        }
        Ok(())
    }

    /// Check one instance (`create-instance`, `get-instance`).
    pub fn check_instance(&self, instance: &Instance) -> Result<(), Excess> {
        Meter::new(self).instance("instance", instance)
    }

    /// Check one cluster (`create-cluster`, `get-cluster`).
    pub fn check_cluster(&self, c: &Cluster) -> Result<(), Excess> {
        let mut m = Meter::new(self);
        let at = |field: &str| format!("cluster `{field}`");
        m.string(&at, "id", &c.id)?;
        m.string(&at, "name", &c.name)?;
        m.string(&at, "region", &c.region)?;
        m.option(&at, "endpoint", &c.endpoint)?;
        m.option(&at, "ca-certificate-pem", &c.ca_certificate_pem)?;
        m.option(&at, "kubernetes-version", &c.kubernetes_version)?;
        m.option(&at, "detail", &c.detail)?;
        match &c.auth {
            crate::runtime::bindings::wit::ClusterAuth::AwsIam(s)
            | crate::runtime::bindings::wit::ClusterAuth::ProviderOauth(s) => {
                m.string(&at, "auth", s)?
            }
            crate::runtime::bindings::wit::ClusterAuth::Fetched => {}
        }
        m.labels(&at, &c.labels)?;
        m.resources(&at, &c.resources)
    }

    /// Check the credentials of a cluster (`get-credentials`).
    pub fn check_credentials(&self, c: &ClusterCredentials) -> Result<(), Excess> {
        let mut m = Meter::new(self);
        let at = |field: &str| format!("credentials `{field}`");
        match c {
            ClusterCredentials::BearerToken(b) => m.string(&at, "token", &b.token),
            ClusterCredentials::ClientCertificate(c) => {
                m.string(&at, "certificate-pem", &c.certificate_pem)?;
                m.string(&at, "key-pem", &c.key_pem)
            }
            ClusterCredentials::Kubeconfig(k) => m.string(&at, "kubeconfig", k),
        }
    }

    /// Check what `describe.info` answered.
    pub fn check_info(&self, info: &ProviderInfo) -> Result<(), Excess> {
        let mut m = Meter::new(self);
        let at = |field: &str| format!("provider-info `{field}`");
        m.string(&at, "name", &info.name)?;
        m.string(&at, "version", &info.version)?;
        m.list(&at, "capabilities", info.capabilities.len())?;
        m.list(&at, "expected-hosts", info.expected_hosts.len())?;
        for h in &info.expected_hosts {
            m.string(&at, "expected-hosts", h)?;
        }
        m.list(&at, "regions", info.regions.len())?;
        for r in &info.regions {
            m.string(&at, "regions", r)?;
        }
        m.list(&at, "settings", info.settings.len())?;
        for s in &info.settings {
            m.string(&at, "settings.key", &s.key)?;
            m.string(&at, "settings.description", &s.description)?;
            m.option(&at, "settings.default-value", &s.default_value)?;
        }
        Ok(())
    }
}

/// Measures one answer: every string against the per-string cap and, added
/// up, against the total.
struct Meter<'a> {
    limits: &'a ReturnLimits,
    total: usize,
}

impl<'a> Meter<'a> {
    fn new(limits: &'a ReturnLimits) -> Self {
        Self { limits, total: 0 }
    }

    fn count(&self, what: &str, n: usize, cap: usize, setting: &'static str) -> Result<(), Excess> {
        if n > cap {
            return Err(Excess {
                what: format!("{n} {what}"),
                cap: format!("{cap} {what}"),
                setting,
            });
        }
        Ok(())
    }

    fn list(&self, at: &dyn Fn(&str) -> String, field: &str, n: usize) -> Result<(), Excess> {
        if n > self.limits.max_list_items {
            return Err(Excess {
                what: format!("{} has {n} items", at(field)),
                cap: format!("{} items per list", self.limits.max_list_items),
                setting: "max_returned_list_items",
            });
        }
        Ok(())
    }

    fn string(&mut self, at: &dyn Fn(&str) -> String, field: &str, s: &str) -> Result<(), Excess> {
        if s.len() > self.limits.max_string_bytes {
            return Err(Excess {
                what: format!("{} is {} bytes", at(field), s.len()),
                cap: format!("{} KiB per string", self.limits.max_string_bytes >> 10),
                setting: "max_returned_string_kib",
            });
        }
        self.total += s.len();
        if self.total > self.limits.max_total_bytes {
            return Err(Excess {
                what: format!("its strings add up to more than {} bytes", self.total),
                cap: format!("{} MiB per answer", self.limits.max_total_bytes >> 20),
                setting: "max_returned_mib",
            });
        }
        Ok(())
    }

    fn option(
        &mut self,
        at: &dyn Fn(&str) -> String,
        field: &str,
        s: &Option<String>,
    ) -> Result<(), Excess> {
        match s {
            Some(s) => self.string(at, field, s),
            None => Ok(()),
        }
    }

    fn labels(
        &mut self,
        at: &dyn Fn(&str) -> String,
        labels: &[(String, String)],
    ) -> Result<(), Excess> {
        self.list(at, "labels", labels.len())?;
        for (k, v) in labels {
            self.string(at, "labels", k)?;
            self.string(at, "labels", v)?;
        }
        Ok(())
    }

    fn resources(
        &mut self,
        at: &dyn Fn(&str) -> String,
        resources: &[ResourceRef],
    ) -> Result<(), Excess> {
        self.list(at, "resources", resources.len())?;
        for r in resources {
            self.string(at, "resources", &r.kind)?;
            self.string(at, "resources", &r.id)?;
        }
        Ok(())
    }

    fn instance(&mut self, name: &str, i: &Instance) -> Result<(), Excess> {
        let at = |field: &str| format!("{name} `{field}`");
        self.string(&at, "id", &i.id)?;
        self.string(&at, "region", &i.region)?;
        self.option(&at, "zone", &i.zone)?;
        self.string(&at, "instance-type", &i.instance_type)?;
        self.option(&at, "public-ipv4", &i.public_ipv4)?;
        self.option(&at, "private-ipv4", &i.private_ipv4)?;
        self.option(&at, "public-ipv6", &i.public_ipv6)?;
        self.option(&at, "detail", &i.detail)?;
        self.labels(&at, &i.labels)?;
        self.resources(&at, &i.resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::wit::{Arch, InstanceState, PriceSource};

    fn offer(name: String) -> Offer {
        Offer {
            instance_type: name,
            region: "r".into(),
            zone: None,
            vcpus: 1.0,
            memory_gib: 1.0,
            storage_gib: None,
            gpus: 0.0,
            gpu_model: None,
            gpu_memory_gib: None,
            arch: Arch::X8664,
            hourly_usd: 0.01,
            spot_hourly_usd: None,
            shared_cpu: false,
            confidential: false,
            promotional: false,
            source: PriceSource {
                source: "snapshot:t".into(),
                observed_at: 0,
                from_snapshot: true,
            },
        }
    }

    fn instance(labels: usize, detail: usize) -> Instance {
        Instance {
            id: "i".into(),
            region: "r".into(),
            zone: None,
            instance_type: "t".into(),
            state: InstanceState::Running,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels: (0..labels).map(|i| (format!("k{i}"), "v".into())).collect(),
            resources: vec![],
            created_at: None,
            detail: Some("d".repeat(detail)),
        }
    }

    #[test]
    fn answers_at_every_cap_pass_and_one_past_fails_naming_the_setting() {
        let l = ReturnLimits {
            max_offers: 3,
            max_instances: 2,
            max_list_items: 4,
            max_string_bytes: 1024,
            max_total_bytes: 1 << 20,
        };
        let offers: Vec<Offer> = (0..3).map(|i| offer(format!("t{i}"))).collect();
        assert!(l.check_offers(&offers).is_ok());
        let four: Vec<Offer> = (0..4).map(|i| offer(format!("t{i}"))).collect();
        assert_eq!(
            l.check_offers(&four).unwrap_err().setting,
            "max_returned_offers"
        );
        assert!(l.check_offers(&[offer("x".repeat(1024))]).is_ok());
        let long = l.check_offers(&[offer("x".repeat(1025))]).unwrap_err();
        assert_eq!(long.setting, "max_returned_string_kib");
        assert!(long.what.contains("offer 0 `instance-type`"), "{long:?}");

        assert!(l.check_instance(&instance(4, 1024)).is_ok());
        assert_eq!(
            l.check_instance(&instance(5, 1)).unwrap_err().setting,
            "max_returned_list_items"
        );
        assert_eq!(
            l.check_instances(&[instance(0, 1), instance(0, 1), instance(0, 1)])
                .unwrap_err()
                .setting,
            "max_returned_instances"
        );
    }

    #[test]
    fn many_strings_under_their_cap_still_hit_the_total() {
        let l = ReturnLimits {
            max_total_bytes: 10_000,
            ..ReturnLimits::default()
        };
        let offers: Vec<Offer> = (0..20).map(|_| offer("x".repeat(1000))).collect();
        assert_eq!(
            l.check_offers(&offers).unwrap_err().setting,
            "max_returned_mib"
        );
    }
}
