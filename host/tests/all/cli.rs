//! The `bpr` binary end to end: embedded defaults on a fresh machine, config
//! errors, and the operator's SSH hosts in `bpr plan`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpr(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpr"))
        .args(args)
        // A fresh machine: no state, no config, no credentials.
        .env("XDG_STATE_HOME", state)
        .env("HOME", state)
        .env_remove("BPR_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("DIGITALOCEAN_TOKEN")
        .env_remove("VULTR_API_KEY")
        .env("RUST_LOG", "error")
        .output()
        .expect("bpr runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn providers_list_shows_the_in_tree_providers_on_embedded_defaults() {
    let state = tempfile::tempdir().unwrap();
    let out = bpr(state.path(), &["providers", "list"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for name in ["aws", "digitalocean", "ssh", "vultr"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
        assert!(line.ends_with("loaded"), "{line}");
    }
}

#[test]
fn plan_works_offline_on_a_fresh_machine_from_the_embedded_snapshots() {
    let state = tempfile::tempdir().unwrap();
    let out = bpr(
        state.path(),
        &[
            "plan",
            "--cpu",
            "2",
            "--memory",
            "4",
            "--region",
            "us-east-1",
            "--region",
            "nyc3",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert!(
        stdout
            .contains("offline: every price comes from the components' embedded, dated snapshots"),
        "{stdout}"
    );
    assert!(stdout.contains("embedded snapshot"), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("aws ") || l.starts_with("digitalocean "))
        .collect();
    assert!(rows.iter().any(|l| l.starts_with("aws ")), "{stdout}");
    assert!(
        rows.iter().any(|l| l.starts_with("digitalocean ")),
        "{stdout}"
    );

    let json = bpr(
        state.path(),
        &["plan", "--cpu", "2", "--memory", "4", "--json", "--explain"],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["offline"], true);
    let first = &v["candidates"][0];
    assert!(first["offer"]["vcpus"].as_f64().unwrap() >= 2.0);
    assert!(first["offer"]["memory_gib"].as_f64().unwrap() >= 4.0);
    assert!(
        v["excluded"].as_array().is_some_and(|e| !e.is_empty()),
        "--explain lists exclusions"
    );
}

#[test]
fn an_unknown_config_key_is_an_error_naming_file_and_key() {
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("operator.toml");
    std::fs::write(&cfg, "[operator.deployment]\nmax_cost_per_huor = 1.0\n").unwrap();
    let out = bpr(
        state.path(),
        &["--config", cfg.to_str().unwrap(), "providers", "list"],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("operator.toml") && stderr.contains("max_cost_per_huor"),
        "{stderr}"
    );
}

fn sshd_dir() -> PathBuf {
    PathBuf::from(std::env::var("BPR_TEST_SSHD_DIR").expect(
        "BPR_TEST_SSHD_DIR is not set: run scripts/standins/sshd.sh start and export BPR_TEST_SSHD_DIR (scripts/test.sh does both)",
    ))
}

#[test]
fn plan_includes_the_operators_probed_ssh_hosts_as_offers() {
    let d = sshd_dir();
    let port = std::fs::read_to_string(d.join("port"))
        .unwrap()
        .trim()
        .to_string();
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(d.join("host_ed25519.pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("operator.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nintegrity = \"warn\"\n[providers.ssh]\nallow_ssh = true\n\
             [[ssh.hosts]]\nalias = \"lab1\"\naddress = \"127.0.0.1\"\nport = {port}\nuser = \"deploy\"\n\
             private_key_file = {:?}\nhost_key_fingerprint = {fp:?}\nregion = \"lab\"\n",
            d.join("client_ed25519")
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let probe = bpr(state.path(), &["--config", c, "hosts", "probe"]);
    let (stdout, stderr) = text(&probe);
    assert!(probe.status.success(), "{stderr}");
    assert!(stdout.starts_with("lab1: "), "{stdout}");

    let plan = bpr(
        state.path(),
        &[
            "--config", c, "plan", "--cpu", "1", "--memory", "0.5", "--region", "lab",
        ],
    );
    let (stdout, stderr) = text(&plan);
    assert!(plan.status.success(), "{stderr}\n{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("ssh "))
        .unwrap_or_else(|| panic!("no ssh offer:\n{stdout}"));
    assert!(
        row.contains("lab1") && row.contains("0.0000"),
        "the host is offered at its cost of 0: {row}"
    );
}

#[test]
fn providers_lock_shows_the_changes_then_approves_and_enforce_mode_loads() {
    let state = tempfile::tempdir().unwrap();
    let providers = state.path().join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::copy(
        crate::support::component_path("well_behaved"),
        providers.join("well_behaved.wasm"),
    )
    .unwrap();
    let cfg = state.path().join("operator.toml");
    std::fs::write(
        &cfg,
        format!(
            "[host]\nproviders_dir = {providers:?}\nintegrity = \"enforce\"\n[providers.well_behaved]\nallow = [\"https://api.example.com\"]\n"
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();

    let before = bpr(state.path(), &["--config", c, "providers", "list"]);
    assert!(
        text(&before).0.contains("not in providers.lock"),
        "{}",
        text(&before).0
    );

    let dry = bpr(
        state.path(),
        &["--config", c, "providers", "lock", "--dry-run"],
    );
    let (stdout, _) = text(&dry);
    assert!(
        stdout.contains("+ well_behaved") && stdout.contains("https://api.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(
        !providers.join("providers.lock").exists(),
        "a dry run writes nothing"
    );

    let lock = bpr(state.path(), &["--config", c, "providers", "lock"]);
    assert!(lock.status.success());
    assert!(providers.join("providers.lock").exists());

    let after = bpr(state.path(), &["--config", c, "providers", "list"]);
    let line = text(&after)
        .0
        .lines()
        .find(|l| l.starts_with("well_behaved"))
        .unwrap()
        .to_string();
    assert!(line.ends_with("loaded"), "{line}");

    let inspect = bpr(
        state.path(),
        &["--config", c, "providers", "inspect", "well_behaved"],
    );
    let (stdout, stderr) = text(&inspect);
    assert!(inspect.status.success(), "{stderr}");
    for needle in [
        "imports:",
        "wasi:http/outgoing-handler@0.2",
        "exports:",
        "blueprint:provider/compute@0.1.0",
        "limits",
        "memory 256 MiB",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
}

#[test]
fn plan_lists_the_kubernetes_clusters_with_the_tier_that_fits() {
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("operator.toml");
    // No network I/O: listing a cluster only reads the config.
    std::fs::write(
        &cfg,
        "[operator.kubernetes]\nclusters = [ { name = \"lab\", kubeconfig = \"/etc/k8s/lab.config\" } ]\n\
         managed = [ { name = \"doks\", provider = \"digitalocean\", region = \"nyc1\", id = \"c-1\" } ]\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let plan = bpr(
        state.path(),
        &["--config", c, "plan", "--cpu", "1", "--memory", "2"],
    );
    let (stdout, stderr) = text(&plan);
    assert!(plan.status.success(), "{stderr}\n{stdout}");
    for target in ["k8s:lab", "k8s:doks"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(target))
            .unwrap_or_else(|| panic!("{target} missing:\n{stdout}"));
        assert!(line.contains("tier premium fits"), "{line}");
    }
    let plan = bpr(
        state.path(),
        &[
            "--config", c, "plan", "--cpu", "8", "--memory", "32", "--json",
        ],
    );
    let (stdout, stderr) = text(&plan);
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let k8s = v["kubernetes"].as_array().unwrap();
    assert_eq!(k8s.len(), 2);
    assert!(
        k8s[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("premium")),
        "{k8s:?}"
    );
}

#[test]
fn a_duplicate_cluster_name_in_the_config_is_an_error_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let cfg = state.path().join("operator.toml");
    std::fs::write(
        &cfg,
        "[operator.kubernetes]\nclusters = [ { name = \"lab\", kubeconfig = \"/k\" } ]\n\
         managed = [ { name = \"lab\", provider = \"aws\", region = \"us-east-1\", id = \"c\" } ]\n",
    )
    .unwrap();
    let out = bpr(
        state.path(),
        &["--config", cfg.to_str().unwrap(), "k8s", "clusters"],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("operator.kubernetes") && stderr.contains("`lab`"),
        "{stderr}"
    );
}
