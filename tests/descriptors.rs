//! More log files than descriptors (issue 19): `dingtail run` under a 1,024 open-file limit
//! (`prlimit`, soft and hard) with 1,100 files, found at start or partly added while running.
//! Every alert is delivered; `/metrics` says how many descriptors are open, the limit, and how
//! many files are parked.

use std::time::Duration;

use crate::support::alerts::{Alerting, alerts, append, free_port, get, metric};

const LIMIT: &[&str] = &["prlimit", "--nofile=1024:1024", "--"];

#[test]
fn a_thousand_files_then_a_hundred_more_under_a_1024_limit_all_deliver() {
    let port = free_port();
    let setup = Alerting::new(
        "fds-added",
        &["logs/*.log"],
        &format!("listen: 127.0.0.1:{port}\n"),
    );
    for i in 0..1_000 {
        append(&setup.log(&format!("f{i:04}.log")), "service started\n");
    }
    let mut daemon = setup.start_through(LIMIT);
    daemon.wait_for_log("dingtail running", Duration::from_secs(30));
    // 10 alerts in files followed from the start (parked ones among them), 100 in new files.
    for i in 0..10 {
        append(
            &setup.log(&format!("f{i:04}.log")),
            &alerts("old", i..i + 1),
        );
    }
    for i in 0..100 {
        append(
            &setup.log(&format!("n{i:04}.log")),
            &alerts("new", i..i + 1),
        );
    }
    setup.wait_total(&daemon, 110, Duration::from_secs(60));
    let total = setup.settled_total();
    eprintln!("1,000 + 100 files under a 1,024 limit: {total} of 110 alerts delivered");
    assert_eq!(total, 110);
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_fds_limit"),
        Some(1024.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "dingtail_files_watched"), Some(1100.0));
    let parked = metric(&metrics, "dingtail_files_parked").unwrap();
    assert!(parked >= 1100.0 - 896.0, "{parked} parked");
    let open = metric(&metrics, "dingtail_fds_open").unwrap();
    assert!(open > 0.0 && open < 1024.0, "{open} open");
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
}

#[test]
fn eleven_hundred_files_at_start_under_a_1024_limit_start_and_deliver() {
    let setup = Alerting::new("fds-start", &["logs/*.log"], "");
    for i in 0..1_100 {
        append(
            &setup.log(&format!("f{i:04}.log")),
            &alerts("start", i..i + 1),
        );
    }
    let mut daemon = setup.start_through(LIMIT);
    setup.wait_total(&daemon, 1_100, Duration::from_secs(60));
    let total = setup.settled_total();
    eprintln!("1,100 files at start under a 1,024 limit: {total} of 1,100 alerts delivered");
    assert_eq!(total, 1_100);
    // Parked files still wake when they grow.
    for i in (0..1_100).step_by(100) {
        append(
            &setup.log(&format!("f{i:04}.log")),
            &alerts("later", i..i + 1),
        );
    }
    setup.wait_total(&daemon, 1_111, Duration::from_secs(30));
    assert_eq!(setup.settled_total(), 1_111);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
}
