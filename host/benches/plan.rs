//! `bpr plan` end to end with warm caches (issue 5 target: ≤ 100 ms), as a
//! process: start, load the components from the artifact cache, read the
//! cached catalogues from SQLite, normalise, rank, print. Run with
//! `RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench plan`.
//!
//! The AWS catalogue is the recorded `instances.json` (tests/fixtures/aws),
//! served once from a local server to fill the cache; the measured runs then
//! read only the cache (the server is stopped before measuring).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let bpr = env!("CARGO_BIN_EXE_bpr");
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/instances.json");
    let body = std::fs::read(fixture).unwrap();

    // A one-request-at-a-time HTTP server for the warm-up fetch.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    let cfg = dir.path().join("operator.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nintegrity = \"warn\"\nwatch = false\nstate_dir = {:?}\nproviders_dir = {:?}\n\
             [providers.aws]\nallow = [\"http://{addr}\"]\nmax_response_body_kib = 65536\n\
             [providers.aws.settings]\ncatalog_url = \"http://{addr}/instances.json\"\n",
            dir.path().join("state"),
            Path::new(env!("BPR_GUEST_DIR")),
        ),
    )
    .unwrap();
    let run = || {
        let out = Command::new(bpr)
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "plan",
                "--cpu",
                "2",
                "--memory",
                "4",
                "--region",
                "us-east-1",
            ])
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let warm = run();
    server.join().unwrap();
    assert!(
        warm.contains("live, fetched now"),
        "warm-up fetched live:\n{warm}"
    );
    let cached = run();
    assert!(cached.contains("cache, "), "served from cache:\n{cached}");

    let mut samples: Vec<Duration> = (0..30)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "bpr plan, warm caches ({} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}
