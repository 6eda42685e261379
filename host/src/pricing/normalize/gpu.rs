//! The GPU vocabulary: one name per GPU model whatever the provider calls it,
//! large-memory variants told apart by memory per GPU, and slices of a GPU
//! recognised.

/// One GPU model of the vocabulary.
pub(super) struct GpuModel {
    /// Token that identifies it in provider strings (lower case).
    key: &'static str,
    /// The host's name for it.
    canonical: &'static str,
    /// Memory of one whole GPU in GiB (smallest variant); used to spot
    /// vGPU slices sold as "1 GPU".
    full_memory_gib: Option<f32>,
    /// Large-memory variant: `(min GiB, max GiB, name)`.
    variant: Option<(f32, f32, &'static str)>,
    /// Current datacentre flagship: a whole one under
    /// [`SanityBounds::min_usd_per_flagship_gpu_hour`] is not believable.
    pub(super) flagship: bool,
}

const fn gpu(key: &'static str, canonical: &'static str, memory: f32) -> GpuModel {
    GpuModel {
        key,
        canonical,
        full_memory_gib: Some(memory),
        variant: None,
        flagship: false,
    }
}

const fn flagship(mut model: GpuModel) -> GpuModel {
    model.flagship = true;
    model
}

const fn with_variant(mut model: GpuModel, min: f32, max: f32, name: &'static str) -> GpuModel {
    model.variant = Some((min, max, name));
    model
}

const fn accelerator(key: &'static str, canonical: &'static str) -> GpuModel {
    GpuModel {
        key,
        canonical,
        full_memory_gib: None,
        variant: None,
        flagship: false,
    }
}

/// The vocabulary. Memory sizes are the vendors' published per-GPU sizes.
/// Strings seen in `shared/pricing/` (ec2instances.info `GPU_model`, SkyPilot
/// `AcceleratorName`, DigitalOcean `gpu_info.model`, Vultr `gpu_type`, GCP
/// SKU descriptions) all resolve through these keys; see the tests.
const GPU_MODELS: &[GpuModel] = &[
    gpu("t4", "NVIDIA T4", 16.0),
    gpu("t4g", "NVIDIA T4G", 16.0),
    gpu("a10g", "NVIDIA A10G", 24.0),
    gpu("a10", "NVIDIA A10", 24.0),
    flagship(with_variant(
        gpu("a100", "NVIDIA A100", 40.0),
        79.0,
        81.0,
        "NVIDIA A100 80GB",
    )),
    flagship(gpu("h100", "NVIDIA H100", 80.0)),
    flagship(gpu("h200", "NVIDIA H200", 141.0)),
    flagship(gpu("b200", "NVIDIA B200", 180.0)),
    gpu("l4", "NVIDIA L4", 24.0),
    gpu("l40s", "NVIDIA L40S", 48.0),
    gpu("l40", "NVIDIA L40", 48.0),
    gpu("a40", "NVIDIA A40", 48.0),
    with_variant(
        gpu("v100", "NVIDIA V100", 16.0),
        31.0,
        33.0,
        "NVIDIA V100 32GB",
    ),
    gpu("p100", "NVIDIA P100", 12.0),
    gpu("p4", "NVIDIA P4", 8.0),
    gpu("k80", "NVIDIA K80", 12.0),
    gpu("m60", "NVIDIA M60", 8.0),
    gpu("mi25", "AMD MI25", 16.0),
    flagship(gpu("mi300x", "AMD MI300X", 192.0)),
    flagship(gpu("mi325x", "AMD MI325X", 256.0)),
    gpu("v520", "AMD Radeon Pro V520", 8.0),
    accelerator("inferentia", "AWS Inferentia"),
    accelerator("inferentia2", "AWS Inferentia2"),
    accelerator("trainium", "AWS Trainium"),
    accelerator("trainium2", "AWS Trainium2"),
];

/// Google TPU generations: `tpu-v6e-1` -> `Google TPU v6e`.
const TPU_GENERATIONS: &[(&str, &str)] = &[
    ("v2", "Google TPU v2"),
    ("v3", "Google TPU v3"),
    ("v4", "Google TPU v4"),
    ("v5e", "Google TPU v5e"),
    ("v5litepod", "Google TPU v5e"),
    ("v5p", "Google TPU v5p"),
    ("v6e", "Google TPU v6e"),
];

fn lookup(key: &str) -> Option<&'static GpuModel> {
    GPU_MODELS.iter().find(|m| m.key == key)
}

pub(super) fn model_by_canonical(canonical: &str) -> Option<&'static GpuModel> {
    GPU_MODELS
        .iter()
        .find(|m| m.canonical == canonical || m.variant.is_some_and(|(_, _, v)| v == canonical))
}

/// The host's name for a GPU model as a provider spells it, or `None` when
/// the string names no known model.
///
/// The string is split into lower-case words at anything not a letter or
/// digit; the first word that is a known model key decides (`Tesla`,
/// `Tensor Core`, vendor names and `x8` count suffixes are ignored). A
/// large-memory variant (`A100 80GB`, `V100 32GB`) is chosen by a `<n>gb`
/// word in the string or by `memory_gib_per_gpu` in the variant's range; a
/// hint outside every range (e.g. a total over several GPUs) is ignored.
pub fn canonical_gpu_model(raw: &str, memory_gib_per_gpu: Option<f32>) -> Option<&'static str> {
    let words: Vec<String> = raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let memory_word = words
        .iter()
        .find_map(|w| w.strip_suffix("gb").and_then(|n| n.parse::<f32>().ok()));
    for (i, word) in words.iter().enumerate() {
        if word == "tpu" {
            let generation = words.get(i + 1)?;
            return TPU_GENERATIONS
                .iter()
                .find(|(g, _)| g == generation)
                .map(|&(_, name)| name);
        }
        let model = lookup(word).or_else(|| lookup(strip_count_suffix(word)));
        if let Some(model) = model {
            let memory = memory_word.or(memory_gib_per_gpu);
            if let (Some((min, max, name)), Some(gib)) = (model.variant, memory)
                && (min..=max).contains(&gib)
            {
                return Some(name);
            }
            return Some(model.canonical);
        }
    }
    None
}

/// `h100x8` -> `h100` (DigitalOcean slugs carry the GPU count).
fn strip_count_suffix(word: &str) -> &str {
    match word.rfind('x') {
        Some(x)
            if x > 0 && x + 1 < word.len() && word[x + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &word[..x]
        }
        _ => word,
    }
}

/// True when an offer's GPU is a slice of a physical GPU: a count that is not
/// a whole number, or memory per GPU under 3/4 of the model's smallest whole
/// size (a vGPU sold as "1 GPU", e.g. Vultr's 4 GB A100).
pub fn is_fractional_gpu(
    gpus: f32,
    canonical_model: Option<&str>,
    memory_gib_per_gpu: Option<f32>,
) -> bool {
    if gpus <= 0.0 {
        return false;
    }
    if gpus.fract() != 0.0 {
        return true;
    }
    let full = canonical_model
        .and_then(model_by_canonical)
        .and_then(|m| m.full_memory_gib);
    matches!((full, memory_gib_per_gpu), (Some(full), Some(gib)) if gib < 0.75 * full)
}

/// Remembers [`canonical_gpu_model`] per provider string and memory hint: a
/// catalogue names a handful of GPU models across many thousand offers.
#[derive(Debug, Default)]
pub struct GpuNames {
    known: std::collections::HashMap<String, Vec<Named>>,
}

/// A memory hint (`f32` bits) and the canonical name it gave.
type Named = (Option<u32>, Option<&'static str>);

impl GpuNames {
    /// [`canonical_gpu_model`]`(raw, memory_gib_per_gpu)`, computed once per
    /// distinct pair.
    pub fn canonical(
        &mut self,
        raw: &str,
        memory_gib_per_gpu: Option<f32>,
    ) -> Option<&'static str> {
        let hint = memory_gib_per_gpu.map(f32::to_bits);
        if let Some(seen) = self.known.get(raw)
            && let Some(&(_, name)) = seen.iter().find(|(h, _)| *h == hint)
        {
            return name;
        }
        let name = canonical_gpu_model(raw, memory_gib_per_gpu);
        self.known
            .entry(raw.to_owned())
            .or_default()
            .push((hint, name));
        name
    }
}
