//! Capacity probe: one remote script printing `nproc`, `/proc/meminfo`,
//! `df -Pk /` and `nvidia-smi -L` (when installed), and its parser.

use super::{Resources, SshError};

/// Marker line between the probe script's sections.
const SEP: &str = "@@bpr-probe@@";

/// The probe script, run as `sh -c SCRIPT`. `df -P` keeps each filesystem on
/// one line (plain `df -k` wraps long device names).
pub(crate) const PROBE_SCRIPT: &str = "nproc; echo @@bpr-probe@@; cat /proc/meminfo; echo @@bpr-probe@@; df -Pk /; echo @@bpr-probe@@; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L; fi";

const GIB: f64 = (1u64 << 30) as f64;

/// The probe script's output could not be read; the message names the section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProbeParseError(String);

/// Parses the probe script's output into capacity. The error names the
/// section that could not be read.
pub fn parse_probe_output(out: &str) -> Result<Resources, ProbeParseError> {
    let bad = |what: &str| ProbeParseError(what.to_string());
    let parts: Vec<&str> = out.split(SEP).collect();
    if parts.len() != 4 {
        return Err(ProbeParseError(format!(
            "probe output has {} sections, expected 4 (nproc, meminfo, df, nvidia-smi)",
            parts.len()
        )));
    }
    let vcpus: u32 = parts[0].trim().parse().map_err(|_| {
        ProbeParseError(format!(
            "`nproc` printed {:?}, not a number",
            parts[0].trim()
        ))
    })?;
    let mem_kib: u64 = parts[1]
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("/proc/meminfo has no readable `MemTotal:` line"))?;
    // Second line of `df -Pk /`: filesystem, 1024-blocks, used, available...
    let disk_kib: u64 = parts[2]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("`df -Pk /` printed no readable size line"))?;
    // `GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-...)`
    let gpu_lines: Vec<&str> = parts[3]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GPU "))
        .collect();
    let gpu_model = gpu_lines.first().and_then(|l| {
        let rest = l.split_once(": ")?.1;
        let model = rest.split(" (UUID").next().unwrap_or(rest).trim();
        (!model.is_empty()).then(|| model.to_string())
    });
    Ok(Resources {
        vcpus: vcpus as f32,
        memory_gib: (mem_kib as f64 * 1024.0 / GIB) as f32,
        storage_gib: (disk_kib as f64 * 1024.0 / GIB) as f32,
        gpus: gpu_lines.len() as f32,
        gpu_model,
    })
}

/// Maps a parse failure to the capability's error, naming the host.
pub(crate) fn probe_error(alias: &str, why: impl std::fmt::Display) -> SshError {
    SshError::Other(format!("probe of ssh host `{alias}` failed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_with_two_gpus_is_parsed() {
        let out = "8\n@@bpr-probe@@\nMemTotal:       16303412 kB\nMemFree: 1 kB\n@@bpr-probe@@\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 102687672 5 6 1% /\n@@bpr-probe@@\nGPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-2)\n";
        let r = parse_probe_output(out).expect("parses");
        assert_eq!(r.vcpus, 8.0);
        assert!((r.memory_gib - 15.548).abs() < 0.01, "{}", r.memory_gib);
        assert!((r.storage_gib - 97.93).abs() < 0.01, "{}", r.storage_gib);
        assert_eq!(r.gpus, 2.0);
        assert_eq!(r.gpu_model.as_deref(), Some("NVIDIA A100-SXM4-40GB"));
    }

    #[test]
    fn probe_output_without_meminfo_is_an_error_naming_it() {
        let out = "8\n@@bpr-probe@@\n\n@@bpr-probe@@\nx\n/ 1 2\n@@bpr-probe@@\n";
        let e = parse_probe_output(out).expect_err("no MemTotal");
        assert!(e.to_string().contains("MemTotal"), "{e}");
    }
}
