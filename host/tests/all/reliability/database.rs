//! Issue 20 item 4: an emptied database is refused by every command, not
//! silently recreated, until the operator says to start a new one.

use super::harness::{Bpr, text};
use crate::support::TestEnv;

#[test]
fn an_emptied_database_is_refused_until_the_operator_initialises_a_new_one() {
    let env = TestEnv::new();
    // No provider is reached: the endpoint only has to parse.
    let bpr = Bpr::for_aws(&env, "http://127.0.0.1:9");
    let db = env.state.join("bpr.sqlite3");
    std::fs::write(&db, b"").unwrap();

    for args in [
        &["status", "--json"][..],
        &["cleanup"],
        &["providers", "list"],
    ] {
        let out = bpr.run(args);
        assert!(
            !out.status.success(),
            "bpr {args:?} accepted it: {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&db.display().to_string())
                && err.contains("is empty (0 bytes)")
                && err.contains("--initialize-database"),
            "bpr {args:?} must name the file, the problem and what to do: {err}"
        );
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left untouched");
    }

    let out = bpr.run(&["--initialize-database", "status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let kept: Vec<String> = std::fs::read_dir(&env.state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("bpr.sqlite3.empty-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old file is kept aside: {kept:?}");
    // From now on it is an ordinary database.
    let out = bpr.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
}
