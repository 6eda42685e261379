//! One instance type of `instances.json`, parsed from its own bytes: only
//! the fields offers need, strings borrowed from the bytes where they have no
//! escapes, prices only for Linux in the wanted regions. Everything else is
//! skipped by the parser without being built.
//!
//! Fields (from the ec2instances.info scraper's `ec2_instance.go`):
//! `instance_type`, `vCPU`, `memory` (GiB), `GPU` (a count, fractional for
//! slices), `GPU_model`, `GPU_memory` (GiB, total over the instance's GPUs),
//! `arch` (list), `storage {devices, size (GB per device)}` and
//! `pricing[<region>][<os>]` with `ondemand`, `spot_avg`, `spot_min`,
//! `spot_max` (numbers as strings).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{RegionPrice, Regions, arch_of};
use provider_sdk::types::Arch;

/// What offers need of one instance type.
#[derive(Debug)]
pub struct TypeRecord<'a> {
    pub instance_type: Cow<'a, str>,
    pub vcpus: Option<f64>,
    pub memory: Option<f64>,
    pub gpus: Option<f64>,
    pub gpu_model: Option<Cow<'a, str>>,
    pub gpu_memory: Option<f64>,
    pub arch: Arch,
    pub storage_gib: Option<f32>,
}

impl<'a> TypeRecord<'a> {
    /// Parses `bytes` (one element of the array); the Linux prices of the
    /// wanted `regions` (all when empty) are appended to `prices`, their
    /// regions named by ids of `names`.
    pub fn parse(
        bytes: &'a [u8],
        regions: &[String],
        names: &mut Regions,
        prices: &mut Vec<RegionPrice>,
    ) -> serde_json::Result<TypeRecord<'a>> {
        prices.clear();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let record = TypeSeed {
            regions,
            names,
            prices,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(record)
    }
}

struct TypeSeed<'s> {
    regions: &'s [String],
    names: &'s mut Regions,
    prices: &'s mut Vec<RegionPrice>,
}

impl<'de> DeserializeSeed<'de> for TypeSeed<'_> {
    type Value = TypeRecord<'de>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TypeSeed<'_> {
    type Value = TypeRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an instance type object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut instance_type = None;
        let mut record = TypeRecord {
            instance_type: Cow::Borrowed(""),
            vcpus: None,
            memory: None,
            gpus: None,
            gpu_model: None,
            gpu_memory: None,
            arch: Arch::X8664,
            storage_gib: None,
        };
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::InstanceType => instance_type = Some(map.next_value::<Text<'de>>()?.0),
                Field::Vcpu => record.vcpus = map.next_value::<Num>()?.0,
                Field::Memory => record.memory = map.next_value::<Num>()?.0,
                Field::Gpu => record.gpus = map.next_value::<Num>()?.0,
                Field::GpuModel => {
                    record.gpu_model = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0)
                }
                Field::GpuMemory => record.gpu_memory = map.next_value::<Num>()?.0,
                Field::Arch => record.arch = map.next_value::<ArchField>()?.0,
                Field::Storage => record.storage_gib = map.next_value::<Storage>()?.0,
                Field::Pricing => map.next_value_seed(PricingSeed {
                    regions: self.regions,
                    names: &mut *self.names,
                    prices: &mut *self.prices,
                })?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        record.instance_type =
            instance_type.ok_or_else(|| de::Error::missing_field("instance_type"))?;
        Ok(record)
    }
}

/// The keys read; every other key is skipped.
enum Field {
    InstanceType,
    Vcpu,
    Memory,
    Gpu,
    GpuModel,
    GpuMemory,
    Arch,
    Storage,
    Pricing,
    Other,
}

impl<'de> serde::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                Ok(match key {
                    "instance_type" => Field::InstanceType,
                    "vCPU" => Field::Vcpu,
                    "memory" => Field::Memory,
                    "GPU" => Field::Gpu,
                    "GPU_model" => Field::GpuModel,
                    "GPU_memory" => Field::GpuMemory,
                    "arch" => Field::Arch,
                    "storage" => Field::Storage,
                    "pricing" => Field::Pricing,
                    _ => Field::Other,
                })
            }
        }
        de.deserialize_str(V)
    }
}

/// A string, borrowed from the record's bytes when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        de.deserialize_str(V)
    }
}

/// A number given as a JSON number or as a numeric string (prices are
/// strings); anything else, or a value that is not finite, is `None`.
struct Num(Option<f64>);

impl<'de> serde::Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(Some(v).filter(|v| v.is_finite())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Num, E> {
                Ok(Num(s.trim().parse::<f64>().ok().filter(|v| v.is_finite())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
        }
        de.deserialize_any(V)
    }
}

/// `arch`: a list of names (`["x86_64"]`, `["arm64"]`) or one name.
struct ArchField(Arch);

impl<'de> serde::Deserialize<'de> for ArchField {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArchField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of architectures")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ArchField, E> {
                Ok(ArchField(arch_of(&[s])))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ArchField, E> {
                Ok(ArchField(Arch::X8664))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArchField, A::Error> {
                let mut arch = Arch::X8664;
                while let Some(name) = seq.next_element::<Text<'de>>()? {
                    if arch_of(&[&name.0]) == Arch::Arm64 {
                        arch = Arch::Arm64;
                    }
                }
                Ok(ArchField(arch))
            }
        }
        de.deserialize_any(V)
    }
}

/// `storage {devices, size}`: instance-store disk in GiB (size is GB per
/// device); `null` or no size is `None` (EBS only).
struct Storage(Option<f32>);

impl<'de> serde::Deserialize<'de> for Storage {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Storage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a storage object or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Storage, E> {
                Ok(Storage(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Storage, A::Error> {
                let (mut size, mut devices) = (None, None);
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match &*key.0 {
                        "size" => size = map.next_value::<Num>()?.0,
                        "devices" => devices = map.next_value::<Num>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let gib = size.map(|s| s * devices.unwrap_or(1.0) * 1e9 / f64::from(1u32 << 30));
                Ok(Storage(gib.filter(|g| *g > 0.0).map(|g| g as f32)))
            }
        }
        de.deserialize_any(V)
    }
}

/// `pricing`: region -> operating system -> prices. Regions not wanted are
/// skipped unread.
struct PricingSeed<'s> {
    regions: &'s [String],
    names: &'s mut Regions,
    prices: &'s mut Vec<RegionPrice>,
}

impl<'de> DeserializeSeed<'de> for PricingSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PricingSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("prices by region")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(region) = map.next_key::<Text<'de>>()? {
            let wanted = self.regions.is_empty() || self.regions.iter().any(|r| *r == region.0);
            if !wanted {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if let Some((hourly, spot)) = map.next_value::<RegionPrices>()?.0 {
                let region = self
                    .names
                    .id(&region.0)
                    .ok_or_else(|| de::Error::custom("more than 65,535 distinct regions"))?;
                self.prices.push(RegionPrice {
                    region,
                    hourly,
                    spot,
                });
            }
        }
        Ok(())
    }
}

/// `pricing[<region>]`: only `linux` is read; `(on-demand, spot)` when the
/// on-demand price is positive. Spot is the average, else the maximum, else
/// the minimum the catalogue gives.
struct RegionPrices(Option<(f64, Option<f64>)>);

impl<'de> serde::Deserialize<'de> for RegionPrices {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RegionPrices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("prices by operating system")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RegionPrices, E> {
                Ok(RegionPrices(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RegionPrices, A::Error> {
                let mut found = None;
                while let Some(os) = map.next_key::<Text<'de>>()? {
                    if os.0 == "linux" {
                        found = map.next_value::<LinuxPrices>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RegionPrices(found))
            }
        }
        de.deserialize_any(V)
    }
}

/// `pricing[<region>].linux`.
struct LinuxPrices(Option<(f64, Option<f64>)>);

impl<'de> serde::Deserialize<'de> for LinuxPrices {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LinuxPrices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Linux prices")
            }
            fn visit_unit<E: de::Error>(self) -> Result<LinuxPrices, E> {
                Ok(LinuxPrices(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LinuxPrices, A::Error> {
                let (mut ondemand, mut avg, mut min, mut max) = (None, None, None, None);
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let slot = match &*key.0 {
                        "ondemand" => &mut ondemand,
                        "spot_avg" => &mut avg,
                        "spot_min" => &mut min,
                        "spot_max" => &mut max,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Num>()?.0;
                }
                let positive = |p: Option<f64>| p.filter(|p| *p > 0.0);
                let spot = positive(avg).or(positive(max)).or(positive(min));
                Ok(LinuxPrices(positive(ondemand).map(|h| (h, spot))))
            }
        }
        de.deserialize_any(V)
    }
}
