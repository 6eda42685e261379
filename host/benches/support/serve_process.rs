//! `bpr serve` as its own process, for the benchmarks that measure it as the
//! operator runs it (`serve.rs`, `replicas.rs`): started from a config, its
//! address read from its log, waited for, killed when dropped. Included by
//! each bench with `#[path]` (every bench is its own crate).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The API token every benchmark's config names.
pub const TOKEN: &str = "bench-token-0123456789abcdef0123456789abcdef";

/// A running `bpr serve`; killed (and reaped) when dropped.
pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bpr --config <config> serve` and waits (up to 2 min) for the line
/// saying where it listens; its ERROR lines are echoed.
pub fn start(config: &Path) -> Serve {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "warn,bpr::serve=info")
        .env("RUST_BACKTRACE", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("serving http://") {
                let rest = &line[i + "serving ".len()..];
                let _ = tx.send(rest.split(": ").next().unwrap_or(rest).to_string());
            }
            if line.contains("ERROR") {
                eprintln!("bpr serve: {line}");
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("bpr serve listens");
    Serve { child, url }
}

/// Waits (up to 60 s) until `url`'s `/readyz` answers 2xx.
pub async fn ready(http: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(r) = http
            .get(format!("{url}/readyz"))
            .bearer_auth(TOKEN)
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bpr serve never ready");
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
