//! `bpr logs ID [--follow]`: what a deployment's workload printed (pods of a
//! Kubernetes deployment, the container or unit on an SSH host). For a VM it
//! says what is available instead.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::logs::{DEFAULT_TAIL, LogLine, LogOptions, MAX_TAIL};

/// Flags of `bpr logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Deployment id.
    pub id: String,
    /// Keep printing as the workload prints, until Ctrl-C or the deployment ends.
    #[arg(long, short)]
    pub follow: bool,
    /// The last this many lines of each pod or source (at most 5000).
    #[arg(long, default_value_t = DEFAULT_TAIL, value_parser = clap::value_parser!(u32).range(1..=MAX_TAIL as i64))]
    pub tail: u32,
    /// When following: how often an SSH host is polled and a Kubernetes
    /// deployment's pods are listed again (new pods are followed too), in seconds.
    #[arg(long, default_value_t = 2)]
    pub poll_secs: u64,
    /// One JSON object per line (`source`, `time`, `line`, `truncated`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `bpr logs`.
pub async fn run(args: LogsArgs, config: Config) -> anyhow::Result<ExitCode> {
    let host = Host::start(config).await?;
    let opts = LogOptions {
        tail: args.tail,
        follow: args.follow,
        poll: Duration::from_secs(args.poll_secs.max(1)),
    };
    let mut logs = host.logs(&args.id, &opts).await?;
    let prefixed = logs.sources().len() > 1;
    let mut failed = false;
    let stdout = std::io::stdout();
    loop {
        let item = tokio::select! {
            item = logs.next() => item,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(item) = item else { break };
        match item {
            Ok(l) if args.json => {
                let mut out = stdout.lock();
                serde_json::to_writer(&mut out, &l)?;
                writeln!(out)?;
            }
            Ok(l) if l.source == "bpr" => eprintln!("bpr: {}", l.line),
            Ok(l) => {
                let mut out = stdout.lock();
                writeln!(out, "{}", render(&l, prefixed))?;
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    drop(logs);
    host.shutdown().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One line for a terminal: its source when there are several, a mark when
/// it was cut, and control characters shown as `\u{..}` escapes (a workload's
/// output must not drive the operator's terminal).
pub(crate) fn render(l: &LogLine, prefixed: bool) -> String {
    let mut s = String::new();
    if prefixed {
        s.push('[');
        s.push_str(&l.source);
        s.push_str("] ");
    }
    for c in l.line.chars() {
        if c.is_control() && c != '\t' {
            s.push_str(&c.escape_unicode().to_string());
        } else {
            s.push(c);
        }
    }
    if l.truncated {
        s.push_str(" [line cut]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_from_a_workload_are_shown_not_run_by_the_terminal() {
        let l = LogLine {
            source: "pod-a".into(),
            time: None,
            line: "ok \u{1b}[2J\tdone".into(),
            truncated: true,
        };
        assert_eq!(render(&l, true), "[pod-a] ok \\u{1b}[2J\tdone [line cut]");
        assert_eq!(render(&l, false), "ok \\u{1b}[2J\tdone [line cut]");
    }
}
