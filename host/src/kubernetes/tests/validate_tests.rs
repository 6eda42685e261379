//! Every rendered manifest validates against the real Kubernetes schemas (strict mode:
//! unknown fields are errors) with `kubernetes-validate` from PyPI, installed by
//! `scripts/standins/kmock.sh install`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use super::*;

/// Kubernetes versions validated: the oldest and newest that k8s-openapi 0.29 supports.
const VERSIONS: [&str; 2] = ["1.33", "1.37"];

fn validator() -> PathBuf {
    let path = std::env::var_os("BPR_K8S_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.standins/k8s/venv/bin/kubernetes-validate")
        });
    assert!(
        path.is_file(),
        "kubernetes-validate not found at {} — run `scripts/standins/kmock.sh install` or set BPR_K8S_VALIDATE",
        path.display()
    );
    path
}

fn run_validator(file: &std::path::Path, version: &str) -> (bool, String) {
    let output = Command::new(validator())
        .args(["--strict", "-k", version])
        .arg(file)
        .output()
        .expect("running kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn every_tier_and_option_combination_validates_in_strict_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Identical documents (the Namespace, the RBAC objects...) recur across combinations;
    // validate each distinct one once.
    let mut seen = BTreeSet::new();
    let mut stream = String::new();
    let mut combos = 0;
    for (name, request) in combinations() {
        let manifests = render(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
        combos += 1;
        for object in manifests.objects() {
            let json = serde_json::to_string(&object.to_json().expect("json")).expect("string");
            if seen.insert(json.clone()) {
                stream.push_str("---\n");
                stream.push_str(&json);
                stream.push('\n');
            }
        }
    }
    assert!(combos >= 1000, "only {combos} combinations");
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, &stream).expect("write manifests");
    // One validator process per version, in parallel (each takes ~20 s on 2 cores).
    let runs: Vec<_> = VERSIONS
        .iter()
        .map(|version| {
            let file = file.clone();
            std::thread::spawn(move || (*version, run_validator(&file, version)))
        })
        .collect();
    for run in runs {
        let (version, (ok, text)) = run.join().expect("validator thread");
        assert!(
            ok,
            "kubernetes-validate --strict -k {version} rejected a manifest ({} distinct documents from {combos} combinations):\n{text}",
            seen.len()
        );
        assert!(
            !text.contains("ERROR"),
            "validator reported an error:\n{text}"
        );
    }
}

#[test]
fn the_rendered_yaml_stream_validates_as_one_file() {
    // What `bpr k8s render` prints is itself valid input for kubectl/validators.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("premium.yaml");
    let mut r = request(Tier::Premium);
    r.high_availability = true;
    std::fs::write(
        &file,
        render(&r).expect("render").to_yaml_stream().expect("yaml"),
    )
    .expect("write");
    let (ok, text) = run_validator(&file, VERSIONS[1]);
    assert!(ok, "{text}");
}

#[test]
fn the_validator_rejects_an_unknown_field_so_strict_mode_is_on() {
    // Guards the tests above: a validator that accepts everything would prove nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    let manifests = render(&request(Tier::Basic)).expect("render");
    let mut deployment = manifests
        .workload()
        .expect("workload")
        .to_json()
        .expect("json");
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always".into();
    // After valid documents, so this also shows every document of a stream is checked.
    let stream = format!(
        "{}---\n{}\n",
        manifests.to_yaml_stream().expect("yaml"),
        serde_json::to_string(&deployment).expect("json")
    );
    std::fs::write(&file, stream).expect("write");
    let (ok, text) = run_validator(&file, VERSIONS[1]);
    assert!(!ok, "an unknown field passed validation:\n{text}");
    assert!(text.contains("imagePullPolice"), "{text}");
}
