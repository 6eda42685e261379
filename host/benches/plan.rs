//! `bpr plan` at catalogue scale (issues 5 and 18), measured as the user runs
//! it: the whole `bpr` process, from start to exit, wall time and peak RSS.
//!
//! Two catalogues in the ec2instances.info `instances.json` format, each
//! served by a local HTTP server to the real AWS component:
//! - the recorded one (`tests/fixtures/aws/instances.json`, 243 types);
//! - a generated one of 250,000 offers (10,000 instance types x 25 regions,
//!   each region with Linux on-demand and spot prices and a Windows price to
//!   skip; see [`generate`]).
//!
//! Per catalogue: cold runs (`--refresh`: fetched, parsed in the sandbox,
//! normalised and stored) and warm runs (read from the price store), and
//! where the time goes: `bpr`'s own timing lines (`bpr::pricing` at debug:
//! the `list-offers` call, normalise+encode, store; read, select, rank) and
//! the host's audit line of the catalogue request (until the response is
//! buffered). Then the guest memory the AWS component needs for the
//! catalogue (cold runs at decreasing `memory_mib`), and the two storage
//! forms measured side by side on the same 250,000 offers.
//!
//! Run with `RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench plan`.
//! `BPR_BENCH_OFFERS` (default 250000), `BPR_BENCH_WARM_RUNS` (30),
//! `BPR_BENCH_COLD_RUNS` (5) change the sizes; `BPR_BENCH_ONLY=memory` runs
//! only the guest-memory probe; `BPR_BENCH_SKIP=memory,storage,explain,recorded`
//! leaves those parts out; `BPR_BENCH_DUMP=<file>` writes the generated
//! catalogue and exits.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        measure(&args[2..]);
        return;
    }
    let offers = env_usize("BPR_BENCH_OFFERS", 250_000);
    if let Ok(path) = std::env::var("BPR_BENCH_DUMP") {
        // The generated catalogue, for profiling the parse outside the bench.
        std::fs::write(&path, generate(offers)).unwrap();
        return;
    }
    if std::env::var("BPR_BENCH_ONLY").as_deref() == Ok("memory") {
        guest_memory(offers);
        return;
    }
    let skip = std::env::var("BPR_BENCH_SKIP").unwrap_or_default();
    let skipped = |part: &str| skip.split(',').any(|s| s.trim() == part);
    let warm_runs = env_usize("BPR_BENCH_WARM_RUNS", 30);
    let cold_runs = env_usize("BPR_BENCH_COLD_RUNS", 5);

    let recorded = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/instances.json"),
    )
    .unwrap();
    let t = Instant::now();
    let generated = generate(offers);
    println!("load average at start: {}", load_average());
    println!(
        "generated catalogue: {} offers, {:.1} MB, in {:.1} s",
        offers,
        generated.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let queries: &[(&str, &[&str])] = &[
        (
            "--cpu 2 --memory 4 --region us-east-1",
            &["--cpu", "2", "--memory", "4", "--region", "us-east-1"],
        ),
        (
            "--cpu 4 --memory 8 --region us",
            &["--cpu", "4", "--memory", "8", "--region", "us"],
        ),
        (
            "--cpu 2 --memory 4 (every region)",
            &["--cpu", "2", "--memory", "4"],
        ),
        (
            "--gpus 1 --gpu-model A100 --ha",
            &["--gpus", "1", "--gpu-model", "A100", "--ha"],
        ),
    ];
    let mut table = Vec::new();
    for (name, body, offers_label) in [
        ("recorded", recorded, "243 types".to_string()),
        ("generated", generated, format!("{offers} offers")),
    ] {
        if skipped(name) {
            continue;
        }
        let bench = Bench::new(name, body, 256);
        println!("\n== {name} catalogue ({offers_label})");
        let cold = bench.runs(cold_runs, &[&["--refresh"], queries[0].1].concat());
        report(&format!("cold --refresh {}", queries[0].0), &cold);
        table.push((format!("{name}: cold `--refresh`"), cold.clone()));
        print_cold_split(&cold);
        let served = bench.served.load(Ordering::SeqCst);
        for (label, args) in queries {
            let warm = bench.runs(warm_runs, args);
            report(&format!("warm {label}"), &warm);
            print_warm_split(&warm);
            table.push((format!("{name}: warm `{label}`"), warm));
        }
        assert_eq!(
            bench.served.load(Ordering::SeqCst),
            served,
            "warm runs must not fetch"
        );
        if skipped("explain") {
            continue;
        }
        let explain = bench.runs(warm_runs.min(5), &[queries[0].1, &["--explain"]].concat());
        report(&format!("warm {} --explain", queries[0].0), &explain);
        print_warm_split(&explain);
        table.push((
            format!("{name}: warm `{} --explain`", queries[0].0),
            explain,
        ));
    }

    println!("\n== summary (median / p90 wall, median CPU, median / max peak RSS)");
    for (name, runs) in &table {
        let (wall, rss) = stats(runs);
        let cpu = median_of(runs, |r| Some(r.cpu.as_micros() as u64)).unwrap_or(f64::NAN);
        println!(
            "{name:<62} {:>8.1} / {:>8.1} ms  cpu {:>8.1} ms  {:>6.1} / {:>6.1} MB",
            wall.0,
            wall.1,
            cpu / 1000.0,
            rss.0,
            rss.1
        );
    }

    if !skipped("memory") {
        guest_memory(offers);
    }
    if !skipped("storage") {
        println!("\n== storage forms on the same {offers} offers (in-process)");
        storage_forms(&generate(offers));
    }
}

/// The smallest `memory_mib` (to 4 MiB) at which the AWS component reads a
/// generated catalogue, for several sizes up to `offers`: what an offer
/// costs in guest memory.
fn guest_memory(offers: usize) {
    println!("\n== guest memory: the smallest memory_mib at which list-offers succeeds");
    for n in [offers / 10, offers / 2, offers] {
        let body = generate(n);
        let fits = |mib: u64| {
            Bench::new("memory", body.clone(), mib)
                .run_once(&["--refresh", "--region", "us-east-1"])
                .fresh
        };
        let (mut low, mut high) = (4u64, 1024u64);
        if !fits(high) {
            println!("{n:>7} offers: does not fit in {high} MiB");
            continue;
        }
        while high - low > 4 {
            let mid = (low + high) / 2;
            if fits(mid) {
                high = mid;
            } else {
                low = mid;
            }
        }
        println!(
            "{n:>7} offers ({:.1} MB of JSON): fits in {high} MiB, not in {low} MiB ({:.0} bytes per offer)",
            body.len() as f64 / 1e6,
            (high << 20) as f64 / n as f64
        );
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------

/// Real AWS region codes and names (ec2instances.info `regions`).
const REGIONS: [(&str, &str); 25] = [
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ca-central-1", "Canada (Central)"),
    ("eu-central-1", "Europe (Frankfurt)"),
    ("eu-north-1", "Europe (Stockholm)"),
    ("eu-south-1", "Europe (Milan)"),
    ("eu-west-1", "Europe (Ireland)"),
    ("eu-west-2", "Europe (London)"),
    ("eu-west-3", "Europe (Paris)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-gov-east-1", "AWS GovCloud (US-East)"),
    ("us-gov-west-1", "AWS GovCloud (US-West)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("mx-central-1", "Mexico (Central)"),
];

const SIZES: [(&str, u32); 10] = [
    ("medium", 1),
    ("large", 2),
    ("xlarge", 4),
    ("2xlarge", 8),
    ("4xlarge", 16),
    ("8xlarge", 32),
    ("12xlarge", 48),
    ("16xlarge", 64),
    ("24xlarge", 96),
    ("48xlarge", 192),
];

/// (GPU model as ec2instances.info names it, GiB per GPU).
const GPUS: [(&str, u32); 5] = [
    ("NVIDIA T4 Tensor Core", 16),
    ("NVIDIA A10G", 24),
    ("NVIDIA L4", 24),
    ("NVIDIA A100", 40),
    ("NVIDIA A100", 80),
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `offers` offers in the `instances.json` format: instance types of 10
/// sizes each, every type in 25 regions (the last type in fewer when 25
/// does not divide `offers`). Families differ in memory per vCPU, CPU
/// architecture and GPUs; prices are per vCPU with a per-region factor
/// and noise, spot about 40% of on-demand.
fn generate(offers: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let types = offers.div_ceil(REGIONS.len());
    let mut out = Vec::with_capacity(offers * 260);
    out.push(b'[');
    let mut left = offers;
    for t in 0..types {
        let family_index = t / SIZES.len();
        let (size, vcpus) = SIZES[t % SIZES.len()];
        let kind = family_index % 7;
        let (letter, gib_per_vcpu) = [
            ("m", 4),
            ("c", 2),
            ("r", 8),
            ("x", 16),
            ("t", 4),
            ("g", 4),
            ("p", 8),
        ][kind];
        let arm = family_index.is_multiple_of(3) && kind != 6;
        let family = format!(
            "{letter}{}{}{}",
            family_index / 7 + 1,
            if arm { "g" } else { "" },
            ["", "d", "n", "a"][family_index % 4]
        );
        let name = format!("{family}.{size}");
        let gpu = (kind >= 5).then(|| {
            let (model, per) = GPUS[family_index % GPUS.len()];
            let count = (vcpus / 8).clamp(1, 8);
            (model, count, per * count)
        });
        let per_vcpu = 0.02 + 0.03 * rng.unit() + if gpu.is_some() { 0.2 } else { 0.0 };
        let regions = left.min(REGIONS.len());
        left -= regions;
        let first_region = rng.below(REGIONS.len() as u64) as usize;
        if t > 0 {
            out.push(b',');
        }
        let (gpu_count, gpu_model, gpu_memory) = match gpu {
            Some((m, c, g)) => (c.to_string(), format!("\"{m}\""), g.to_string()),
            None => ("0".into(), "null".into(), "0".into()),
        };
        write!(
            out,
            "{{\"instance_type\":\"{name}\",\"family\":\"General purpose\",\"pretty_name\":\"{} {}\",\
             \"generation\":\"current\",\"vCPU\":{vcpus},\"memory\":{},\"GPU\":{gpu_count},\
             \"GPU_model\":{gpu_model},\"GPU_memory\":{gpu_memory},\"arch\":[\"{}\"],\
             \"network_performance\":\"Up to 12.5 Gigabit\",\"physical_processor\":\"{}\",\
             \"storage\":{},\"regions\":{{",
            family.to_uppercase(),
            size,
            vcpus * gib_per_vcpu,
            if arm { "arm64" } else { "x86_64" },
            if arm { "AWS Graviton3 Processor" } else { "Intel Xeon Scalable (Sapphire Rapids)" },
            if family.ends_with('d') {
                format!("{{\"devices\":1,\"size\":{},\"nvme_ssd\":true}}", 59 * vcpus)
            } else {
                "null".into()
            },
        )
        .unwrap();
        for i in 0..regions {
            let (code, region_name) = REGIONS[(first_region + i) % REGIONS.len()];
            if i > 0 {
                out.push(b',');
            }
            write!(out, "\"{code}\":\"{region_name}\"").unwrap();
        }
        out.extend_from_slice(b"},\"pricing\":{");
        for i in 0..regions {
            let (code, _) = REGIONS[(first_region + i) % REGIONS.len()];
            let factor = 1.0 + 0.35 * (((first_region + i) % REGIONS.len()) as f64 / 25.0);
            let ondemand = f64::from(vcpus) * per_vcpu * factor * (0.95 + 0.1 * rng.unit());
            let spot = ondemand * (0.3 + 0.2 * rng.unit());
            if i > 0 {
                out.push(b',');
            }
            write!(
                out,
                "\"{code}\":{{\"linux\":{{\"ondemand\":\"{ondemand:.4}\",\"spot_avg\":\"{spot:.6}\",\
                 \"spot_min\":\"{:.6}\",\"spot_max\":\"{:.6}\",\"pct_interrupt\":\"<5%\",\
                 \"pct_savings_od\":{}}},\"mswin\":{{\"ondemand\":\"{:.4}\"}}}}",
                spot * 0.9,
                spot * 1.1,
                (100.0 * (1.0 - spot / ondemand)) as u32,
                ondemand + 0.046 * f64::from(vcpus),
            )
            .unwrap();
        }
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
    out
}

// ---------------------------------------------------------------------------
// Serving it and running bpr
// ---------------------------------------------------------------------------

/// One catalogue served locally, a state directory, and a config for `bpr`.
struct Bench {
    _dir: tempfile::TempDir,
    config: PathBuf,
    served: Arc<AtomicUsize>,
}

impl Bench {
    fn new(name: &str, body: Vec<u8>, memory_mib: u64) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(body);
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        // Serves until the process exits; one connection at a time is enough
        // for one bpr at a time.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     last-modified: Wed, 01 Oct 2025 00:00:00 GMT\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
                let _ = s.write_all(&body);
            }
        });
        // Only the AWS component: the catalogue measured is its own.
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers).unwrap();
        std::fs::copy(
            Path::new(env!("BPR_GUEST_DIR")).join("aws.wasm"),
            providers.join("aws.wasm"),
        )
        .unwrap();
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[host]\nintegrity = \"warn\"\nwatch = false\nstate_dir = {:?}\nproviders_dir = {:?}\n\
                 [providers.aws]\nallow = [\"http://{addr}\"]\nmax_response_body_kib = 1048576\n\
                 max_returned_offers = 1000000\n\
                 memory_mib = {memory_mib}\ncall_timeout_ms = 120000\n\
                 [providers.aws.settings]\ncatalog_url = \"http://{addr}/instances.json\"\n\
                 [operator.deployment]\nprice_fetch_timeout_secs = 120\n",
                dir.path().join("state"),
                providers,
            ),
        )
        .unwrap();
        Bench {
            _dir: dir,
            config,
            served,
        }
    }

    fn runs(&self, n: usize, args: &[&str]) -> Vec<Run> {
        (0..n).map(|_| self.run_once(args)).collect()
    }

    /// One `bpr plan` process, measured by a child of this bench (so its
    /// peak RSS is that process's alone).
    fn run_once(&self, args: &[&str]) -> Run {
        let out = Command::new(std::env::current_exe().unwrap())
            .arg("--measure")
            .arg(env!("CARGO_BIN_EXE_bpr"))
            .arg("--config")
            .arg(&self.config)
            .arg("plan")
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LOG", "error,bpr::pricing=debug,bpr::audit::http=info")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::parse(&out.stdout, &out.stderr)
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct Run {
    wall: Duration,
    /// User + system CPU time of the process: what the load of other work
    /// on the machine changes least.
    cpu: Duration,
    max_rss_kb: u64,
    success: bool,
    fresh: bool,
    failure: Option<String>,
    /// From bpr's debug lines, in microseconds.
    call_us: Option<u64>,
    encode_us: Option<u64>,
    store_us: Option<u64>,
    read_us: Option<u64>,
    select_us: Option<u64>,
    rank_us: Option<u64>,
    selected: Option<u64>,
    /// The catalogue request, until its response was buffered (ms).
    request_ms: Option<u64>,
}

impl Run {
    fn parse(stdout: &[u8], stderr: &[u8]) -> Run {
        let mut run = Run::default();
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("MEASURED ") {
                let v: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
                run.wall = Duration::from_micros(v[0]);
                run.max_rss_kb = v[1];
                run.success = v[2] == 0;
                run.cpu = Duration::from_micros(v[3]);
            }
            if line.contains("live, fetched now") {
                run.fresh = true;
            }
            if line.contains("FAILED") || line.contains("fetch failed") {
                run.failure = Some(line.trim().to_string());
            }
        }
        let field = |line: &str, name: &str| -> Option<u64> {
            let at = line.find(&format!("{name}="))? + name.len() + 1;
            line[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        for line in stderr.lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if line.contains("catalogue fetched") {
                run.call_us = field(&line, "call_us");
                run.encode_us = field(&line, "encode_us");
                run.store_us = field(&line, "store_us");
            } else if line.contains(" plan") && line.contains("read_us") {
                run.read_us = field(&line, "read_us");
                run.select_us = field(&line, "select_us");
                run.rank_us = field(&line, "rank_us");
                run.selected = field(&line, "selected");
            } else if line.contains("outbound request") && line.contains("instances.json") {
                run.request_ms = field(&line, "duration_ms");
            }
        }
        run
    }
}

/// `line` without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `--measure BPR ARGS...`: runs BPR, passes its stdout through and prints
/// `MEASURED <wall us> <max rss kB> <exit code>`; its stderr is passed on.
fn measure(cmd: &[String]) {
    let started = Instant::now();
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let wall = started.elapsed();
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    std::io::stdout().write_all(&out.stdout).unwrap();
    std::io::stderr().write_all(&out.stderr).unwrap();
    use nix::sys::time::TimeValLike;
    let cpu = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    println!(
        "MEASURED {} {} {} {}",
        wall.as_micros(),
        usage.max_rss(),
        out.status.code().unwrap_or(-1),
        cpu
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// ((median, p90) wall ms, (median, max) peak RSS MB).
fn stats(runs: &[Run]) -> ((f64, f64), (f64, f64)) {
    let mut wall: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect();
    let mut rss: Vec<f64> = runs.iter().map(|r| r.max_rss_kb as f64 / 1024.0).collect();
    wall.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    (
        (percentile(&wall, 0.5), percentile(&wall, 0.9)),
        (
            percentile(&rss, 0.5),
            rss.last().copied().unwrap_or(f64::NAN),
        ),
    )
}

fn median_of(runs: &[Run], f: impl Fn(&Run) -> Option<u64>) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().filter_map(&f).map(|x| x as f64).collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| percentile(&v, 0.5))
}

fn report(label: &str, runs: &[Run]) {
    let failed = runs.iter().filter(|r| !r.success).count();
    let (wall, rss) = stats(runs);
    let mut sorted: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{label}: {} runs, median {:.1} ms (min {:.1}, p90 {:.1}, max {:.1}), CPU median {:.1} ms, peak RSS median {:.1} MB (max {:.1}), load average after {}{}",
        runs.len(),
        wall.0,
        sorted.first().copied().unwrap_or(f64::NAN),
        wall.1,
        sorted.last().copied().unwrap_or(f64::NAN),
        median_of(runs, |r| Some(r.cpu.as_micros() as u64)).unwrap_or(f64::NAN) / 1000.0,
        rss.0,
        rss.1,
        load_average(),
        if failed > 0 {
            format!(", {failed} FAILED: {:?}", runs.iter().find(|r| !r.success))
        } else {
            String::new()
        }
    );
}

/// `/proc/loadavg`'s three averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(us: Option<f64>) -> String {
    us.map_or("-".into(), |v| format!("{:.1} ms", v / 1000.0))
}

fn print_cold_split(runs: &[Run]) {
    let total = stats(runs).0.0;
    let call = median_of(runs, |r| r.call_us);
    let request = median_of(runs, |r| r.request_ms.map(|m| m * 1000));
    let encode = median_of(runs, |r| r.encode_us);
    let store = median_of(runs, |r| r.store_us);
    let read = median_of(runs, |r| r.read_us);
    let select = median_of(runs, |r| r.select_us);
    let rank = median_of(runs, |r| r.rank_us);
    let known = read.unwrap_or(0.0) + select.unwrap_or(0.0) + rank.unwrap_or(0.0);
    println!(
        "  where the time goes (medians): obtaining the catalogue {} = list-offers call {} \
         (host fetch until buffered {} + guest parse and returning the offers {}) + \
         normalise+encode {} + store {} + the rest {}; select {}; rank {}; \
         the rest of the process (start, load components, print, exit) {:.1} ms",
        ms(read),
        ms(call),
        ms(request),
        ms(call.zip(request).map(|(c, r)| c - r)),
        ms(encode),
        ms(store),
        ms(read.map(|r| r - call.unwrap_or(0.0) - encode.unwrap_or(0.0) - store.unwrap_or(0.0))),
        ms(select),
        ms(rank),
        total - known / 1000.0
    );
}

fn print_warm_split(runs: &[Run]) {
    let total = stats(runs).0.0;
    let read = median_of(runs, |r| r.read_us);
    let select = median_of(runs, |r| r.select_us);
    let rank = median_of(runs, |r| r.rank_us);
    let known = read.unwrap_or(0.0) + select.unwrap_or(0.0) + rank.unwrap_or(0.0);
    println!(
        "  where the time goes (medians): read the store {}, select {} ({} offers selected), rank {}; \
         the rest of the process (start, load components from the artifact cache, print) {:.1} ms",
        ms(read),
        ms(select),
        median_of(runs, |r| r.selected).map_or("-".into(), |v| format!("{v}")),
        ms(rank),
        total - known / 1000.0
    );
}

// ---------------------------------------------------------------------------
// The two storage forms, side by side
// ---------------------------------------------------------------------------

/// Stores the generated catalogue's offers (parsed here natively, the way
/// the component does) as (a) the store's binary form and (b) one SQLite row
/// per offer with the columns placement filters on, and times writing it and
/// reading one region and everything back.
fn storage_forms(catalogue: &[u8]) {
    use blueprint_remote_providers::db::Database;
    use blueprint_remote_providers::placement::{Arch, Offer};
    use blueprint_remote_providers::pricing::{CatalogueStore, Drops, Encoder};

    let doc: serde_json::Value = serde_json::from_slice(catalogue).unwrap();
    let mut offers = Vec::new();
    for t in doc.as_array().unwrap() {
        for (region, p) in t["pricing"].as_object().unwrap() {
            let price = |k: &str| p["linux"][k].as_str().and_then(|s| s.parse::<f64>().ok());
            offers.push(Offer {
                provider: "aws".into(),
                instance_type: t["instance_type"].as_str().unwrap().into(),
                region: region.clone(),
                zone: None,
                vcpus: t["vCPU"].as_f64().unwrap() as f32,
                memory_gib: t["memory"].as_f64().unwrap() as f32,
                storage_gib: None,
                gpus: t["GPU"].as_f64().unwrap() as f32,
                gpu_model: t["GPU_model"].as_str().map(str::to_string),
                gpu_memory_gib: None,
                arch: if t["arch"][0] == "arm64" {
                    Arch::Arm64
                } else {
                    Arch::X86_64
                },
                hourly_usd: price("ondemand").unwrap(),
                spot_hourly_usd: price("spot_avg"),
                shared_cpu: false,
                confidential: false,
                promotional: false,
                fractional_gpu: false,
                operator_owned: false,
                source: "http://127.0.0.1/instances.json".into(),
                observed_at: 1_759_276_800,
                from_snapshot: false,
            });
        }
    }
    drop(doc);
    let dir = tempfile::tempdir().unwrap();

    // (a) the binary form.
    let db = Database::open(&dir.path().join("binary.sqlite3")).unwrap();
    let store = CatalogueStore::new(db);
    let t = Instant::now();
    let mut e = Encoder::new();
    for o in &offers {
        e.push(o);
    }
    let encoded = e.finish();
    let encode = t.elapsed();
    let t = Instant::now();
    store
        .put("aws", 0, offers.len(), &Drops::default(), "", &encoded)
        .unwrap();
    let write = t.elapsed();
    let time_read = |f: &dyn Fn(&str) -> bool| {
        let t = Instant::now();
        let loaded = store.load("aws", f).unwrap().unwrap();
        let n = loaded
            .rows()
            .filter(|r| loaded.shapes()[r.row.shape as usize].vcpus >= 2.0)
            .count();
        (t.elapsed(), n)
    };
    let (one, n1) = time_read(&|r| r == "us-east-1");
    let (all, n2) = time_read(&|_| true);
    let size = std::fs::metadata(dir.path().join("binary.sqlite3"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.path().join("binary.sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "binary rows per region: encode {:.1} ms, write {:.1} ms; read us-east-1 + filter {:.2} ms ({n1} rows), \
         read every region + filter {:.1} ms ({n2} rows); {:.1} MB on disk",
        encode.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3,
        one.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        size as f64 / 1e6
    );

    // (b) one SQLite row per offer.
    let conn = rusqlite::Connection::open(dir.path().join("rows.sqlite3")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE offers (provider TEXT, instance_type TEXT, region TEXT, zone TEXT,
            vcpus REAL, memory_gib REAL, storage_gib REAL, gpus REAL, gpu_model TEXT,
            gpu_memory_gib REAL, arch INTEGER, hourly_usd REAL, spot_usd REAL, flags INTEGER,
            source INTEGER);
         CREATE INDEX offers_region ON offers(provider, region);",
    )
    .unwrap();
    let t = Instant::now();
    {
        let mut conn = conn;
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare("INSERT INTO offers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0)")
                .unwrap();
            for o in &offers {
                insert
                    .execute(rusqlite::params![
                        o.provider,
                        o.instance_type,
                        o.region,
                        o.zone,
                        o.vcpus,
                        o.memory_gib,
                        o.storage_gib,
                        o.gpus,
                        o.gpu_model,
                        o.gpu_memory_gib,
                        o.arch == Arch::Arm64,
                        o.hourly_usd,
                        o.spot_hourly_usd,
                        0
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let write = t.elapsed();
    let conn = rusqlite::Connection::open(dir.path().join("rows.sqlite3")).unwrap();
    let time_query = |sql: &str| {
        let t = Instant::now();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                ))
            })
            .unwrap()
            .count();
        (t.elapsed(), n)
    };
    let (one, n1) = time_query(
        "SELECT instance_type, vcpus, hourly_usd, spot_usd FROM offers \
         WHERE provider = 'aws' AND region = 'us-east-1' AND vcpus >= 2",
    );
    let (all, n2) = time_query(
        "SELECT instance_type, vcpus, hourly_usd, spot_usd FROM offers \
         WHERE provider = 'aws' AND vcpus >= 2",
    );
    println!(
        "one SQLite row per offer: write {:.1} ms; query us-east-1 {:.2} ms ({n1} rows), \
         query every region {:.1} ms ({n2} rows); {:.1} MB on disk",
        write.as_secs_f64() * 1e3,
        one.as_secs_f64() * 1e3,
        all.as_secs_f64() * 1e3,
        (std::fs::metadata(dir.path().join("rows.sqlite3"))
            .map(|m| m.len())
            .unwrap_or(0)
            + std::fs::metadata(dir.path().join("rows.sqlite3-wal"))
                .map(|m| m.len())
                .unwrap_or(0)) as f64
            / 1e6
    );
}
