//! Issue 20 item 5: ids have length and character limits. A request with a
//! 10 MB Blueprint id once went active and made `bpr status` use 149 MB; now
//! it is refused, with a short message, before anything is written.

use super::harness::{Bpr, text};
use crate::support::TestEnv;

#[test]
fn a_ten_megabyte_blueprint_id_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, "http://127.0.0.1:9");
    std::fs::remove_dir_all(&env.state).unwrap();
    let file = env.dir.path().join("huge.toml");
    std::fs::write(
        &file,
        format!(
            "[request]\nblueprint_id = \"{}\"\nservice_id = \"42\"\n\n\
             [[candidates]]\nprovider = \"aws\"\nregion = \"us-east-1\"\ninstance_type = \"t3.micro\"\n",
            "7".repeat(10 << 20)
        ),
    )
    .unwrap();
    let out = bpr.run(&["deploy", "--file", file.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blueprint_id") && err.contains("at most 128"),
        "names the field and the limit: {}",
        &err[..err.len().min(2000)]
    );
    assert!(
        err.len() < 2000,
        "the message stays short: {} bytes",
        err.len()
    );
    assert!(!env.state.exists(), "nothing was written");

    // The same from flags, with a character a label or a name cannot hold.
    let out = bpr.run(&[
        "deploy",
        "--blueprint",
        "7 8",
        "--service",
        "42",
        "--provider",
        "aws",
        "--region",
        "us-east-1",
        "--type",
        "t3.micro",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("blueprint_id"),
        "{}",
        text(&out)
    );
    assert!(!env.state.exists(), "nothing was written");
}
