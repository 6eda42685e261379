//! `bpr plan`: the cheapest offers that meet a request, with sources and, on
//! demand, why everything else was excluded.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::table;
use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::placement::{Geography, Ranking, Request, Tier};
use blueprint_remote_providers::pricing::canonical_gpu_model;
use blueprint_remote_providers::pricing::{CatalogueSource, CatalogueStatus, PlanOptions};
use blueprint_remote_providers::provisioning::{ClusterFit, DeployRequest, Plan};

/// CPU architectures.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArchArg {
    /// x86-64 (Intel, AMD).
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    /// 64-bit ARM (Graviton, Ampere).
    #[value(name = "arm64", alias = "aarch64")]
    Arm64,
}

/// `bpr plan` flags.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Minimum vCPUs.
    #[arg(long, default_value_t = 0.0)]
    pub cpu: f32,
    /// Minimum memory in GiB.
    #[arg(long, default_value_t = 0.0)]
    pub memory: f32,
    /// Minimum disk in GiB.
    #[arg(long, default_value_t = 0.0)]
    pub storage: f32,
    /// Minimum GPU count.
    #[arg(long, default_value_t = 0.0)]
    pub gpus: f32,
    /// Required GPU model (e.g. "A100", "NVIDIA T4").
    #[arg(long)]
    pub gpu_model: Option<String>,
    /// Acceptable region (repeatable), or a geography: us, eu, asia, ...
    #[arg(long)]
    pub region: Vec<String>,
    /// Require confidential computing.
    #[arg(long)]
    pub confidential: bool,
    /// Required CPU architecture (the workload's binary).
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// The workload tolerates interruption: spot prices may be used (if the
    /// operator allows spot).
    #[arg(long)]
    pub spot: bool,
    /// High availability: candidates in two or more failure domains.
    #[arg(long)]
    pub ha: bool,
    /// Payment tier: basic (1 replica, 100m CPU, 128Mi), standard (2 replicas,
    /// 500m CPU, 512Mi) or premium (3 replicas, 2000m CPU, 4Gi, 1 GPU).
    #[arg(long)]
    pub tier: Option<Tier>,
    /// Only these providers (repeatable).
    #[arg(long)]
    pub provider: Vec<String>,
    /// How many candidates to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Fetch live prices even when the cache is fresh.
    #[arg(long)]
    pub refresh: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Explain every excluded offer family.
    #[arg(long)]
    pub explain: bool,
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// The placement request (requirements and preferences) these flags give.
pub fn requirements(args: &PlanArgs) -> anyhow::Result<Request> {
    let mut regions = Vec::new();
    let mut geography = None;
    for r in &args.region {
        match Geography::from_code(r) {
            Some(g) if geography.is_none() => geography = Some(g),
            Some(_) => anyhow::bail!("--region: give at most one geography ({r:?} is the second)"),
            None => regions.push(r.clone()),
        }
    }
    let gpu_model = args.gpu_model.as_ref().map(|raw| {
        canonical_gpu_model(raw, None)
            .map(str::to_string)
            .unwrap_or_else(|| raw.clone())
    });
    Ok(Request {
        min_vcpus: args.cpu,
        min_memory_gib: args.memory,
        min_storage_gib: args.storage,
        min_gpus: args.gpus,
        gpu_model,
        confidential: args.confidential,
        arch: args.arch.map(|a| match a {
            ArchArg::X86_64 => blueprint_remote_providers::placement::Arch::X86_64,
            ArchArg::Arm64 => blueprint_remote_providers::placement::Arch::Arm64,
        }),
        regions,
        geography,
        providers: args.provider.clone(),
        high_availability: args.ha,
        tier: args.tier,
        allow_spot: args.spot,
        ..Request::default()
    })
}

fn source_text(s: &CatalogueStatus, now: u64) -> String {
    let when = s
        .fetched_at
        .map(|t| age(now.saturating_sub(t)))
        .unwrap_or_else(|| "-".into());
    // Prices published well before they were fetched say so.
    let published = match (s.observed_at, s.fetched_at) {
        (Some(o), Some(f)) if f.saturating_sub(o) >= 86_400 => {
            format!(", prices published {} before", age(f - o))
        }
        _ => String::new(),
    };
    match &s.source {
        CatalogueSource::Fresh => format!("live, fetched now{published} ({} offers)", s.offers),
        CatalogueSource::Cached | CatalogueSource::Stale if !published.is_empty() => format!(
            "cache, {when} old{published}{} ({} offers)",
            if s.source == CatalogueSource::Stale {
                ", refreshing"
            } else {
                ""
            },
            s.offers
        ),
        CatalogueSource::Cached => format!("cache, {when} old ({} offers)", s.offers),
        CatalogueSource::Stale => format!("cache, {when} old, refreshing ({} offers)", s.offers),
        CatalogueSource::Snapshot => format!("embedded snapshot, {when} old ({} offers)", s.offers),
        CatalogueSource::LastGood { error } => {
            format!("last good cache, {when} old; fetch failed: {error}")
        }
        CatalogueSource::Failed { error } => format!("FAILED, no prices: {error}"),
    }
}

/// Run `bpr plan`: the library plans (gathering prices, ranking with the
/// operator's policy); this prints what it considered.
pub async fn run(args: PlanArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    let mut req = DeployRequest::new("plan", "plan");
    req.requirements = Some(requirements(&args)?);
    req.failover = Some(args.limit.max(1));
    let host = Host::start(config).await?;
    let interactive = std::io::stderr().is_terminal() && !args.json;
    if interactive {
        eprintln!(
            "loading price catalogues from {} provider(s)…",
            host.providers().len()
        );
    }
    let started = std::time::Instant::now();
    let t = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let progress = |s: &CatalogueStatus| {
        if interactive {
            eprintln!(
                "  [{:>5.1}s] {:<14} {}",
                started.elapsed().as_secs_f64(),
                s.provider,
                source_text(s, t)
            );
        }
    };
    let plan = host
        .orchestrator()
        .plan_all_with_options(
            &req,
            &PlanOptions {
                refresh: args.refresh,
                explain: args.explain,
                ..PlanOptions::default()
            },
            &progress,
        )
        .await?;
    if args.json {
        print_json(&args, &plan, t)?;
    } else {
        print_text(&args, &plan, t);
        print_clusters(&plan.clusters);
    }
    host.pricing().wait_for_refreshes().await;
    let ranked = plan
        .ranking
        .as_ref()
        .is_some_and(|r| !r.candidates.is_empty());
    let cluster_fits = plan.clusters.iter().any(|c| c.tier.is_some());
    Ok(if !ranked && !cluster_fits {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_clusters(clusters: &[ClusterFit]) {
    if clusters.is_empty() {
        return;
    }
    println!(
        "\nkubernetes clusters ([operator.kubernetes]; the operator's own capacity, no catalogue price):"
    );
    for c in clusters {
        let target = format!("k8s:{}", c.cluster);
        match c.tier {
            Some(t) => {
                let (cpu, mem, gpus) = blueprint_remote_providers::placement::tier_resources(t);
                println!(
                    "  {target:<20} tier {} fits ({cpu} vCPU, {mem} GiB, {gpus} GPU per replica): bpr deploy --target {target} --tier {}",
                    t.as_str(),
                    t.as_str()
                );
            }
            None => println!(
                "  {target:<20} no tier fits: {}",
                c.reason.as_deref().unwrap_or("-")
            ),
        }
    }
}

fn print_text(args: &PlanArgs, plan: &Plan, now: u64) {
    println!("price sources:");
    for s in &plan.catalogues {
        println!("  {:<14} {}", s.provider, source_text(s, now));
    }
    if plan.offline {
        println!("offline: every price comes from the components' embedded, dated snapshots");
    }
    if plan.offers_dropped > 0 {
        println!(
            "  {} offer(s) dropped by sanity checks (run with RUST_LOG=warn to see them)",
            plan.offers_dropped
        );
    }
    for s in &plan.skipped {
        println!(
            "  {:<14} not deployable from here: {}",
            s.provider, s.reason
        );
    }
    let empty = Ranking {
        candidates: Vec::new(),
        offers_considered: 0,
        offers_satisfying: 0,
        excluded: Vec::new(),
        high_availability: None,
    };
    let ranking = plan.ranking.as_ref().unwrap_or(&empty);
    println!();
    let rows: Vec<Vec<String>> = ranking
        .candidates
        .iter()
        .take(args.limit)
        .map(|c| {
            let o = &c.offer;
            let gpu = match (&o.gpu_model, o.gpus) {
                (_, 0.0) => "-".to_string(),
                (Some(m), g) => format!("{g} x {m}"),
                (None, g) => format!("{g}"),
            };
            vec![
                o.provider.clone(),
                o.zone
                    .clone()
                    .map(|z| format!("{} ({z})", o.region))
                    .unwrap_or_else(|| o.region.clone()),
                o.instance_type.clone(),
                match o.arch {
                    blueprint_remote_providers::placement::Arch::X86_64 => "x86_64".into(),
                    blueprint_remote_providers::placement::Arch::Arm64 => "arm64".into(),
                },
                format!("{}", o.vcpus),
                format!("{:.1}", o.memory_gib),
                gpu,
                format!("{:.4}", o.hourly_usd),
                o.spot_hourly_usd
                    .map(|s| format!("{s:.4}"))
                    .unwrap_or_else(|| "-".into()),
                if c.spot {
                    "spot".into()
                } else {
                    "on-demand".into()
                },
                if o.from_snapshot {
                    format!("snapshot {}", age(now.saturating_sub(o.observed_at)))
                } else {
                    o.source.clone()
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no offer meets the request (use --explain to see why)");
    } else {
        print!(
            "{}",
            table::render(
                &[
                    "PROVIDER",
                    "REGION",
                    "TYPE",
                    "ARCH",
                    "VCPU",
                    "GIB",
                    "GPU",
                    "$/H",
                    "SPOT $/H",
                    "PAYS",
                    "PRICE SOURCE"
                ],
                &rows
            )
        );
        println!(
            "{} of {} offers meet the request; showing {}",
            ranking.offers_satisfying,
            ranking.offers_considered,
            rows.len()
        );
    }
    if args.explain {
        println!("\nexcluded offer families (first failing rule, offers excluded):");
        for f in &ranking.excluded {
            let reasons: Vec<String> = f
                .reasons
                .iter()
                .map(|r| format!("{} x{} (e.g. {})", r.rule, r.offers, r.example))
                .collect();
            println!("  {}/{:<16} {}", f.provider, f.family, reasons.join("; "));
        }
    }
}

fn print_json(args: &PlanArgs, plan: &Plan, now: u64) -> anyhow::Result<()> {
    let empty = Ranking {
        candidates: Vec::new(),
        offers_considered: 0,
        offers_satisfying: 0,
        excluded: Vec::new(),
        high_availability: None,
    };
    let ranking = plan.ranking.as_ref().unwrap_or(&empty);
    let catalogues: Vec<_> = plan
        .catalogues
        .iter()
        .map(|s| serde_json::json!({ "provider": s.provider, "source": source_text(s, now), "fetched_at": s.fetched_at, "observed_at": s.observed_at, "offers": s.offers }))
        .collect();
    let mut out = serde_json::json!({
        "catalogues": catalogues,
        "offline": plan.offline,
        "mode": plan.mode,
        "deploy_candidates": plan.candidates,
        "skipped": plan.skipped,
        "offers_considered": ranking.offers_considered,
        "offers_satisfying": ranking.offers_satisfying,
        "candidates": ranking.candidates.iter().take(args.limit).collect::<Vec<_>>(),
        "dropped": plan.offers_dropped,
        "kubernetes": plan.clusters.iter().map(|c| match c.tier {
            Some(t) => serde_json::json!({ "target": format!("k8s:{}", c.cluster), "tier": t.as_str() }),
            None => serde_json::json!({ "target": format!("k8s:{}", c.cluster), "error": c.reason }),
        }).collect::<Vec<_>>(),
    });
    if args.explain {
        out["excluded"] = serde_json::to_value(&ranking.excluded)?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
