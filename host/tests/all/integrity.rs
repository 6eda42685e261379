//! Issue 19 (integrity side) and issue 20's settings check: what a hostile
//! component may return or log is bounded, credentials are applied only where
//! they belong, the artifact cache cannot smuggle code past the lock, signed
//! providers, and settings the component does not declare.

use blueprint_remote_providers::Host;
use blueprint_remote_providers::wit::OfferQuery;

use crate::support::TestEnv;

/// A marker unique to one test, so it finds its own lines in the shared log.
fn marker(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

async fn list_offers(host: &Host, name: &str) -> usize {
    host.provider(name)
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap()
        .len()
}

/// Lines of the captured log that mention `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    crate::support::captured_logs()
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_log_record_cannot_forge_an_audit_line_or_any_other_line() {
    crate::support::install_log_capture();
    let m = marker("forge");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log.settings]\nmode = \"forge\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    assert!(!lines.is_empty(), "the record was not logged at all");
    for line in &lines {
        // Every line carrying guest text is the provider's own record.
        assert!(
            line.contains(" bpr::provider: "),
            "a guest forged a line: {line}"
        );
        assert!(
            !line.chars().any(|c| c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')),
            "a control or line-breaking character reached the log: {line:?}"
        );
    }
    assert!(
        !crate::support::captured_logs()
            .lines()
            .any(|l| l.contains(&format!("{m}-forged")) && !l.contains(" bpr::provider: ")),
        "a forged audit line reached the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_rate_limited_per_call_and_the_drop_is_logged() {
    crate::support::install_log_capture();
    let m = marker("flood");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log.settings]\nmode = \"flood\"\ncount = \"20000\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    let records = lines.iter().filter(|l| l.contains("flood record")).count();
    assert!(
        (1..=300).contains(&records),
        "{records} of 20000 records were logged"
    );
    let logs = crate::support::captured_logs();
    let dropped = logs
        .lines()
        .find(|l| l.contains("hostile_log") && l.contains("log records dropped"))
        .expect("the drop is logged");
    assert!(
        dropped.contains(&format!("{}", 20000 - records)),
        "the drop line gives the count: {dropped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_record_with_huge_fields_is_cut_to_its_caps() {
    crate::support::install_log_capture();
    let m = marker("wide");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log]\nmemory_mib = 128\n[providers.hostile_log.settings]\nmode = \"wide\"\ncount = \"200\"\nsize = \"65536\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    let record = lines
        .iter()
        .find(|l| l.contains("wide record"))
        .expect("the record is logged");
    assert!(
        record.len() <= 10 << 10,
        "a {} byte log line from one record",
        record.len()
    );
}
