//! `bpr costs`: accrued spend per deployment, Blueprint, provider or day, from
//! the usage ledger in the database (no provider is loaded).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::costs::{self, CostReport, GroupBy};
use blueprint_remote_providers::tracking::Tracker;

use super::table;

/// Flags of `bpr costs`.
#[derive(Debug, Args)]
pub struct CostsArgs {
    /// Group by deployment (default), blueprint, provider or day (UTC).
    #[arg(long, default_value = "deployment")]
    pub by: GroupBy,
    /// Only spend from this moment on: a date (`2026-12-01`), a time
    /// (`2026-12-01T08:00:00Z`), unix seconds, or an age (`90m`, `24h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `bpr costs`.
pub async fn run(args: CostsArgs, config: Config) -> anyhow::Result<ExitCode> {
    let now = blueprint_remote_providers::clock::unix_now();
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, now))
        .transpose()?;
    let db = config.open_database()?;
    let tracker = Tracker::new(db, &config.host.state_dir.join("deployments"));
    let report = costs::report(&tracker, since, args.by).with_context(|| {
        format!(
            "reading the usage ledger in {}",
            tracker.database().describe()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report as a table with a total line.
fn text(r: &CostReport) -> String {
    let head = match r.by {
        GroupBy::Deployment => "DEPLOYMENT",
        GroupBy::Blueprint => "BLUEPRINT",
        GroupBy::Provider => "PROVIDER",
        GroupBy::Day => "DAY (UTC)",
    };
    let mut rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .map(|l| {
            vec![
                l.key.clone(),
                duration(l.seconds),
                format!("{:.6}", l.usd),
                format!("{:.4}", l.hourly_usd_now),
                if l.unpriced_seconds > 0 {
                    format!("{} without a price", duration(l.unpriced_seconds))
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    rows.push(vec![
        "TOTAL".into(),
        String::new(),
        format!("{:.6}", r.total_usd),
        format!("{:.4}", r.hourly_usd_now),
        String::new(),
    ]);
    let mut out = table::render(&[head, "HELD", "USD", "USD/H NOW", "NOTE"], &rows);
    if let Some(s) = r.since {
        out.push_str(&format!("since {}\n", utc(s)));
    }
    out
}

/// `3d 4h 5m 6s`, the largest units only.
fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .into_iter()
        .skip_while(|(v, _)| *v == 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// `--since`: a date, an RFC 3339 time, unix seconds, or an age before `now`.
fn parse_since(s: &str, now: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()));
    }
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    let split = s.len().saturating_sub(1);
    if let (Ok(n), Some(unit)) = (s[..split].parse::<i64>(), s.get(split..)) {
        let secs = match unit {
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            _ => None,
        };
        if let Some(k) = secs.filter(|_| n >= 0) {
            return Ok(now - n.saturating_mul(k));
        }
    }
    anyhow::bail!(
        "--since {s:?}: give a date (2026-12-01), a time (2026-12-01T08:00:00Z), unix seconds, or an age (90m, 24h, 7d)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_times_seconds_and_ages() {
        let now = 1_796_083_200 + 3600;
        assert_eq!(parse_since("2026-12-01", now).unwrap(), 1_796_083_200);
        assert_eq!(
            parse_since("2026-12-01T01:00:00Z", now).unwrap(),
            1_796_086_800
        );
        assert_eq!(parse_since("1796083200", now).unwrap(), 1_796_083_200);
        assert_eq!(parse_since("90m", now).unwrap(), now - 5400);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400);
        let err = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("--since \"yesterday\""), "{err}");
    }

    #[test]
    fn durations_show_the_largest_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3600 + 61), "1h 1m 1s");
        assert_eq!(duration(2 * 86_400), "2d 0h 0m 0s");
    }
}
