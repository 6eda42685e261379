//! The generated user data, checked as text.

use std::collections::BTreeMap;

use super::*;

fn container() -> WorkloadSpec {
    WorkloadSpec {
        source: WorkloadSource::Container {
            image: "ghcr.io/org/app:1.2".into(),
            args: vec!["--name".into(), "it's; rm -rf /".into()],
            env: BTreeMap::from([("GREETING".to_string(), "hello $USER `id`".to_string())]),
            ports: vec![
                PortSpec {
                    container_port: 80,
                    host_port: Some(8080),
                    public: true,
                },
                PortSpec {
                    container_port: 9090,
                    host_port: None,
                    public: false,
                },
            ],
        },
        cpu_limit: Some(1.5),
        memory_limit_mib: Some(512),
    }
}

fn native() -> WorkloadSpec {
    WorkloadSpec {
        source: WorkloadSource::Native {
            url: "https://example.com/bin/app".into(),
            sha256: "a".repeat(64),
            args: vec!["--port".into(), "80%$x".into()],
            env: BTreeMap::from([("MODE".to_string(), "say \"hi\"".to_string())]),
            ports: vec![],
        },
        cpu_limit: Some(0.5),
        memory_limit_mib: Some(256),
    }
}

#[test]
fn shell_quote_makes_one_literal_word() {
    assert_eq!(shell_quote("plain"), "'plain'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("$(x) `y`"), "'$(x) `y`'");
}

#[test]
fn systemd_quote_escapes_quotes_specifiers_and_variables() {
    assert_eq!(
        systemd_quote(r#"a "b" \c 50% $HOME"#),
        r#""a \"b\" \\c 50%% $$HOME""#
    );
}

#[test]
fn container_user_data_installs_a_runtime_and_runs_locked_down_with_limits() {
    let raw = cloud_init(&container(), "dep-1").unwrap();
    // The docker run line is continued over several lines; join them to check it.
    let text = raw.replace(" \\\n  ", " ");
    assert!(text.starts_with("#!/bin/bash\n"), "{text}");
    assert!(text.contains("set -euo pipefail"));
    assert!(
        text.contains("if ! command -v docker"),
        "installs a runtime when missing"
    );
    assert!(text.contains("docker pull 'ghcr.io/org/app:1.2'"));
    for flag in [
        "--restart always",
        "--cap-drop ALL",
        "--read-only",
        "--security-opt no-new-privileges",
        "--cpus '1.5'",
        "--memory '512m'",
        "--name 'bpr-dep-1'",
    ] {
        assert!(text.contains(flag), "missing {flag} in:\n{text}");
    }
    assert!(text.contains("-p '0.0.0.0:8080:80'"), "{text}");
    assert!(
        text.contains("-p '127.0.0.1:9090:9090'"),
        "private port bound to loopback"
    );
    assert!(
        text.contains("-e 'GREETING=hello $USER `id`'"),
        "env is quoted literally"
    );
    assert!(
        text.contains(r"-- 'ghcr.io/org/app:1.2' '--name' 'it'\''s; rm -rf /'"),
        "{text}"
    );
}

#[test]
fn native_user_data_verifies_the_sha256_before_installing_and_runs_under_systemd() {
    let text = cloud_init(&native(), "dep-2").unwrap();
    let check = text.find("sha256sum").expect("checks the sha256");
    let install = text.find("install -m 0755").expect("installs the binary");
    let start = text
        .find("systemctl enable --now")
        .expect("starts the unit");
    assert!(
        check < install && install < start,
        "verify, then install, then run:\n{text}"
    );
    assert!(text.contains(&format!("!= '{}'", "a".repeat(64))));
    assert!(text.contains(
        "curl -fsSL --retry 5 --proto '=https,http' -o \"$tmp\" 'https://example.com/bin/app'"
    ));
    for line in [
        "Restart=always",
        "CPUQuota=50%",
        "MemoryMax=256M",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(
            text.contains(&format!("\n{line}\n")),
            "missing {line} in:\n{text}"
        );
    }
    assert!(
        text.contains(r#"ExecStart="/opt/bpr/bpr-dep-2" "--port" "80%%$$x""#),
        "{text}"
    );
    assert!(text.contains(r#"Environment="MODE=say \"hi\"""#), "{text}");
    assert!(
        text.contains("<<'BPR_UNIT_EOF'\n"),
        "unit written with a quoted heredoc"
    );
}

#[test]
fn bad_values_are_refused_naming_the_field() {
    let mut w = native();
    if let WorkloadSource::Native { sha256, .. } = &mut w.source {
        *sha256 = "ABC".into();
    }
    assert_eq!(cloud_init(&w, "d").unwrap_err().field, "source.sha256");

    let mut w = native();
    if let WorkloadSource::Native { url, .. } = &mut w.source {
        *url = "ftp://x/y".into();
    }
    assert_eq!(cloud_init(&w, "d").unwrap_err().field, "source.url");

    let mut w = container();
    if let WorkloadSource::Container { args, .. } = &mut w.source {
        args.push("two\nlines".into());
    }
    assert_eq!(cloud_init(&w, "d").unwrap_err().field, "source.args[2]");

    let mut w = container();
    if let WorkloadSource::Container { env, .. } = &mut w.source {
        env.insert("BAD-NAME".into(), "x".into());
    }
    assert_eq!(cloud_init(&w, "d").unwrap_err().field, "source.env[0]");

    let mut w = container();
    w.cpu_limit = Some(0.0);
    assert_eq!(cloud_init(&w, "d").unwrap_err().field, "cpu_limit");
    assert_eq!(
        cloud_init(&container(), "Bad Name").unwrap_err().field,
        "name"
    );
}
