//! Files that are not text (issue 19): compressed rotations (by name or by their magic bytes) and
//! binary files (NUL bytes in their first bytes) are not followed by `dingtail run`, even when
//! they hold lines a rule would match; each is logged once and counted in `/metrics`, and
//! `dingtail check` says which files it will not follow and why.

use crate::support::alerts::{Alerting, alerts, append, free_port, get, metric};
use crate::support::harness::stdout_ok;

#[test]
fn compressed_and_binary_files_are_not_matched_and_check_says_so() {
    let port = free_port();
    let setup = Alerting::new(
        "not-text",
        &["logs/*"],
        &format!("listen: 127.0.0.1:{port}\n"),
    );
    append(&setup.log("app.log"), &alerts("text", 0..3));
    let gzip_like = |text: &str| [&[0x1f, 0x8b, 0x08, 0x00][..], text.as_bytes()].concat();
    std::fs::write(
        setup.log("app.log.1.gz"),
        gzip_like(&format!("\n{}", alerts("gz", 0..5))),
    )
    .unwrap();
    std::fs::write(
        setup.log("sneaky.log"),
        gzip_like(&format!("\n{}", alerts("sneaky", 0..5))),
    )
    .unwrap();
    std::fs::write(
        setup.log("core.log"),
        [
            &b"\x7fELF\x02\x01\x01\0\0\0\n"[..],
            alerts("binary", 0..5).as_bytes(),
        ]
        .concat(),
    )
    .unwrap();

    let check = stdout_ok(
        setup
            .dir
            .command()
            .arg("check")
            .arg("-c")
            .arg(&setup.config),
    );
    assert!(
        check.contains("  app: 1 file now, 1 rule: alert\n"),
        "{check}"
    );
    for (name, why) in [
        ("app.log.1.gz", "compressed (gz)"),
        ("sneaky.log", "compressed (gz)"),
        ("core.log", "binary (NUL bytes in its first bytes)"),
    ] {
        let line = format!("not followed: {}: {why}", setup.log(name).display());
        assert!(check.contains(&line), "{line} in\n{check}");
    }
    assert!(check.contains("descriptors: "), "{check}");

    let mut daemon = setup.start();
    setup.wait_total(&daemon, 3, std::time::Duration::from_secs(20));
    // More lines in the binary file are not read either.
    append(&setup.log("core.log"), &alerts("binary-later", 0..2));
    assert_eq!(setup.settled_total(), 3, "{}", daemon.describe());
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_files_skipped_total{reason=\"binary\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "dingtail_files_skipped_total{reason=\"compressed\"}"
        ),
        Some(1.0),
        "the gzip named .gz is never opened; the other one is counted"
    );
    assert!(metric(&metrics, "dingtail_fds_open").is_some_and(|n| n > 0.0));
    assert!(metric(&metrics, "dingtail_fds_limit").is_some_and(|n| n > 0.0));
    assert_eq!(metric(&metrics, "dingtail_files_parked"), Some(0.0));
    let logs = daemon.stderr().join("\n");
    assert_eq!(
        logs.matches("not following a file").count(),
        2,
        "each reported once: {logs}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
