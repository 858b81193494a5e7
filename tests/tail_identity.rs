//! File identity by content, end to end (issue 19): `dingtail run` against the DingTalk stand-in
//! while the real `logrotate` rotates in both modes, with a glob that matches the rotated copies
//! (`app.log*`) and one that does not (`app.log`), the daemon up and down across rotations; and
//! a file truncated and rewritten with the same banner while the daemon is down or stopped
//! (SIGSTOP). Every alert line must be counted exactly once.

use std::fs::OpenOptions;
use std::io::Write;
use std::thread;
use std::time::Duration;

use crate::support::alerts::{Alerting, alerts, append};

const WAIT: Duration = Duration::from_secs(40);

#[test]
fn logrotate_copytruncate_with_a_glob_matching_the_copies_counts_every_line_once() {
    let setup = Alerting::new("copytruncate-wide", &["logs/app.log*"], "");
    let log = setup.log("app.log");
    append(&log, "started\n");
    let mut daemon = setup.start();
    daemon.wait_for_log("dingtail running", WAIT);
    // Bursts of 50 lines, one write each; twice, logrotate copies and truncates right after a
    // burst, while the daemon may still be reading it (the lines it has not read yet are only
    // in the copy then).
    for burst in 0..10 {
        for line in alerts("line", burst * 50..(burst + 1) * 50).lines() {
            append(&log, &format!("{line}\n"));
        }
        if burst == 3 || burst == 7 {
            setup.logrotate(&log, "copytruncate");
        }
        thread::sleep(Duration::from_millis(150));
    }
    setup.wait_total(&daemon, 500, WAIT);
    let total = setup.settled_total();
    eprintln!("copytruncate, app.log*, 2 rotations: {total} alerts counted for 500 lines");
    assert_eq!(total, 500, "{}", daemon.describe());
    assert_eq!(daemon.stop().code(), Some(0));
}

/// 40 lines; up: a rotation, 5 lines to the old descriptor, 25 to the path; down: 20 lines, a
/// rotation, 5 lines to the old descriptor, 10 to the path; up again. 105 alerts, once each.
fn rotations_up_and_down(name: &str, mode: &str, glob: &str) {
    let setup = Alerting::new(name, &[glob], "");
    let log = setup.log("app.log");
    append(&log, &alerts("before", 0..40));
    let mut daemon = setup.start();
    setup.wait_total(&daemon, 40, WAIT);

    let mut old = OpenOptions::new().append(true).open(&log).unwrap();
    setup.logrotate(&log, mode);
    // An application that has not reopened its log yet (create mode) writes to the old file.
    old.write_all(alerts("late-up", 0..5).as_bytes()).unwrap();
    append(&log, &alerts("up", 0..25));
    setup.wait_total(&daemon, 70, WAIT);

    assert_eq!(daemon.stop().code(), Some(0));
    let mut old = OpenOptions::new().append(true).open(&log).unwrap();
    append(&log, &alerts("down", 0..20));
    setup.logrotate(&log, mode);
    old.write_all(alerts("late-down", 0..5).as_bytes()).unwrap();
    append(&log, &alerts("after", 0..10));
    let mut daemon = setup.start();
    setup.wait_total(&daemon, 105, WAIT);
    let total = setup.settled_total();
    eprintln!("{mode}, {glob}, up and down across rotations: {total} alerts counted for 105 lines");
    assert_eq!(total, 105, "{}", daemon.describe());
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn create_rotations_with_a_narrow_glob_lose_and_repeat_nothing() {
    rotations_up_and_down("create-narrow", "create", "logs/app.log");
}

#[test]
fn create_rotations_with_a_wide_glob_lose_and_repeat_nothing() {
    rotations_up_and_down("create-wide", "create", "logs/app.log*");
}

#[test]
fn copytruncate_rotations_with_a_narrow_glob_lose_and_repeat_nothing() {
    rotations_up_and_down("copytruncate-narrow", "copytruncate", "logs/app.log");
}

#[test]
fn copytruncate_rotations_with_a_wide_glob_lose_and_repeat_nothing() {
    rotations_up_and_down("copytruncate-wide-2", "copytruncate", "logs/app.log*");
}

/// Six lines, 330 bytes: longer than the 256 bytes a fingerprint hashes.
fn banner() -> String {
    (0..6)
        .map(|i| format!("# app 1.2.3 starting up: configuration line {i} of the banner .......\n"))
        .collect()
}

/// 150 alerts under a banner, then the file truncated and rewritten with the same banner and
/// 200 other alerts while the daemon is down (`stop`) or stopped with SIGSTOP.
fn same_banner_rewrite(name: &str, while_stopped: bool) {
    let setup = Alerting::new(name, &["logs/app.log"], "");
    let log = setup.log("app.log");
    append(&log, &(banner() + &alerts("old", 0..150)));
    let mut daemon = setup.start();
    setup.wait_total(&daemon, 150, WAIT);
    if while_stopped {
        daemon.signal("STOP");
    } else {
        assert_eq!(daemon.stop().code(), Some(0));
    }
    std::fs::write(&log, banner() + &alerts("new", 0..200)).unwrap();
    if while_stopped {
        daemon.signal("CONT");
    } else {
        daemon = setup.start();
    }
    setup.wait_total(&daemon, 350, WAIT);
    let total = setup.settled_total();
    eprintln!(
        "same-banner rewrite ({}): {total} alerts counted for 150 + 200 lines",
        if while_stopped { "SIGSTOP" } else { "down" }
    );
    assert_eq!(total, 350, "{}", daemon.describe());
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_same_banner_rewrite_while_down_is_read_whole() {
    same_banner_rewrite("banner-down", false);
}

#[test]
fn a_same_banner_rewrite_while_stopped_is_read_whole() {
    same_banner_rewrite("banner-stopped", true);
}
