//! Builds the guest components (the shipped providers in `components/` and
//! the test components in `tests/components/`) for wasm32-wasip2, so that
//! `cargo run`/`cargo test` on a fresh machine need nothing but the Rust
//! toolchain. Adds the wasm32-wasip2 target with rustup when it is missing.
//!
//! Outputs (in `<workspace>/target/wasm/`, a target dir of its own so this
//! nested cargo never waits on the outer one's lock):
//! - `providers/<name>.wasm` + `providers.lock`: the shipped providers and the
//!   lock that approves exactly these files with the default allowlists;
//! - `wasm32-wasip2/wasm/*.wasm`: everything, test components included.
//!
//! Set `BPR_SKIP_GUEST_BUILD=1` to skip (the paths are still emitted).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "wasm";

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    let target_dir = workspace.join("target").join("wasm");
    let out_dir = target_dir.join(TARGET).join(PROFILE);
    let providers_dir = target_dir.join("providers");
    println!("cargo:rustc-env=BPR_GUEST_DIR={}", providers_dir.display());
    println!("cargo:rustc-env=BPR_TEST_GUEST_DIR={}", out_dir.display());
    println!(
        "cargo:rustc-env=BPR_TEST_GUEST_V2_DIR={}",
        workspace
            .join("target/wasm-v2")
            .join(TARGET)
            .join(PROFILE)
            .display()
    );
    for dir in ["components", "tests/components", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("src/config/defaults.toml").display()
    );
    println!("cargo:rerun-if-env-changed=BPR_SKIP_GUEST_BUILD");
    if std::env::var_os("BPR_SKIP_GUEST_BUILD").is_some_and(|v| v == "1") {
        return;
    }

    let shipped = cdylib_packages(&workspace.join("components"));
    let tests = cdylib_packages(&workspace.join("tests/components"));
    ensure_target();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--profile", PROFILE, "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Do not pass the outer build's flags and wrappers (clippy, coverage)
        // on to the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PRIMARY_PACKAGE");
    for (pkg, _) in shipped.iter().chain(tests.iter()) {
        cmd.args(["-p", pkg]);
    }
    let status = cmd
        .status()
        .expect("cannot run cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components for {TARGET} failed (see the output above)"
    );

    // A second build of `well-behaved` reporting version 2, for the hot-swap test.
    if tests.iter().any(|(p, _)| p == "test-well-behaved") {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&workspace)
            .args([
                "build",
                "--profile",
                PROFILE,
                "--target",
                TARGET,
                "-p",
                "test-well-behaved",
            ])
            .env("CARGO_TARGET_DIR", workspace.join("target").join("wasm-v2"))
            .env("BPR_TEST_VERSION", "2")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .status()
            .expect("cannot run cargo");
        assert!(status.success(), "building well-behaved v2 failed");
    }

    std::fs::create_dir_all(&providers_dir).expect("cannot create target/wasm/providers");
    let defaults =
        std::fs::read_to_string(manifest.join("src/config/defaults.toml")).expect("defaults.toml");
    let defaults: toml::Table = defaults.parse().expect("defaults.toml is valid TOML");
    let mut lock = String::from(
        "# Written by host/build.rs: approves the in-tree components built with this host.\n",
    );
    for (_, lib) in &shipped {
        let src = out_dir.join(format!("{lib}.wasm"));
        let bytes = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let dst = providers_dir.join(format!("{lib}.wasm"));
        if std::fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
            let tmp = providers_dir.join(format!(".{lib}.wasm.tmp"));
            std::fs::write(&tmp, &bytes).expect("write component");
            std::fs::rename(&tmp, &dst).expect("rename component");
        }
        let allow: Vec<String> = defaults
            .get("providers")
            .and_then(|p| p.get(lib.as_str()))
            .and_then(|p| p.get("allow"))
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(|s| format!("{s:?}")))
                    .collect()
            })
            .unwrap_or_default();
        lock.push_str(&format!(
            "\n[providers.{lib}]\nsha256 = \"{}\"\nallowed_hosts = [{}]\n",
            hex::encode(Sha256::digest(&bytes)),
            allow.join(", ")
        ));
    }
    let lock_path = providers_dir.join("providers.lock");
    if std::fs::read_to_string(&lock_path).ok().as_deref() != Some(lock.as_str()) {
        std::fs::write(&lock_path, lock).expect("write providers.lock");
    }
}

/// (package name, lib name) of every cdylib crate directly under `dir`.
fn cdylib_packages(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(path.join("Cargo.toml")) else {
            continue;
        };
        let Ok(manifest) = text.parse::<toml::Table>() else {
            continue;
        };
        let Some(pkg) = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        let lib = manifest.get("lib");
        let is_cdylib = lib
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("cdylib")));
        if !is_cdylib {
            continue;
        }
        let lib_name = lib
            .and_then(|l| l.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| pkg.replace('-', "_"));
        out.push((pkg.to_string(), lib_name));
    }
    out
}

/// Add the wasm32-wasip2 target when the toolchain lacks it.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).is_dir());
    if installed {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it by hand"
        ),
    }
}
