//! The journald input through the real daemon and the DingTalk stand-in (issue 14): entries
//! written by `systemd-journal-remote` into a folder (`journald.directory`) reach the group
//! with their journal fields and their own host; appends while running, a `kill -9` of the
//! daemon and a reload that restarts journalctl lose and repeat nothing (the cursor is stored
//! with the matches); a missing journalctl shows in `/healthz`, the metrics and `check`; and
//! `journalctl -o json | dingtail test -` matches the same entries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::journal::{Export, append};
use crate::support::alerts::{free_port, get, metric};
use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::standin::{Received, Standin};

const WAIT: Duration = Duration::from_secs(30);

const RULES: &str = r#"- name: sshd-failed
  input: journal
  match: 'Failed password for (?P<user>\S+)'
  where: {SYSLOG_IDENTIFIER: sshd}
  robot: ops
  title: 'sshd {{ user }} on {{ host }}'
  template: '{{ _SYSTEMD_UNIT }}/{{ PRIORITY }}/{{ _NOT_THERE }}/{{ user }}'
"#;

/// A config reading the journal files in `journal/` from the beginning, with `journald_extra`
/// (YAML flow entries) in its `journald:`.
fn config(dir: &Dir, standin: &Standin, port: u16, journald_extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("journal")).unwrap();
    dir.create("rules.yaml", RULES);
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
timezone: UTC
host: this-host
state_dir: state
listen: 127.0.0.1:{port}
inputs:
  journal:
    journald: {{directory: \"{}\"{journald_extra}}}
    start_at: beginning
robots:
{}    linger: 300ms
rules: [\"rules.yaml\"]
",
            dir.join("journal").display(),
            standin.robot_yaml("ops")
        ),
    )
}

/// Entries `range`: an sshd failure each (user `u<n>`, priority 3, unit ssh.service, host
/// web-1), and after each one a cron entry with the same words, which `where:` keeps out.
fn failures(range: std::ops::RangeInclusive<u64>) -> Vec<Export> {
    let mut out = Vec::new();
    for n in range {
        let mut sshd = Export::new(n);
        sshd.field("SYSLOG_IDENTIFIER", "sshd")
            .field("PRIORITY", "3")
            .field("_SYSTEMD_UNIT", "ssh.service")
            .field(
                "MESSAGE",
                &format!("Failed password for u{n} from 203.0.113.9"),
            );
        out.push(sshd);
        let mut cron = Export::new(1000 + n);
        cron.field("SYSLOG_IDENTIFIER", "cron")
            .field("MESSAGE", &format!("Failed password for cron{n}"));
        out.push(cron);
    }
    out
}

fn total(standin: &Standin) -> u64 {
    standin.delivered().iter().map(Received::alerts).sum()
}

fn text(standin: &Standin) -> String {
    standin
        .delivered()
        .iter()
        .map(|r| format!("{}\n{}", r.title(), r.visible_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `n` alerts were delivered, then a little more, and checks that no more came.
fn expect_total(standin: &Standin, daemon: &Daemon, n: u64) {
    let reached = standin.wait_for(
        |received| received.iter().map(Received::alerts).sum::<u64>() >= n,
        WAIT,
    );
    assert!(
        reached,
        "{} of {n}:\n{}{}",
        total(standin),
        text(standin),
        daemon.describe()
    );
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        total(standin),
        n,
        "nothing repeated:\n{}{}",
        text(standin),
        daemon.describe()
    );
}

/// True while a journalctl reading `dir` runs (found in /proc, without procps).
fn journalctl_runs(dir: &Path) -> bool {
    let wanted = format!("--directory={}", dir.display());
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes.flatten().any(|process| {
        std::fs::read(process.path().join("cmdline")).is_ok_and(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first()
                .is_some_and(|program| program.ends_with(b"journalctl"))
                && args.contains(&wanted.as_bytes())
        })
    })
}

#[test]
fn journal_entries_survive_appends_a_kill_9_and_a_reload_without_loss_or_repeat() {
    let standin = Standin::start();
    let dir = Dir::new("journal-daemon");
    let port = free_port();
    let config = config(&dir, &standin, port, "");
    let journal = dir.join("journal");
    append(&journal, &failures(1..=3));

    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    expect_total(&standin, &daemon, 3);
    let seen = text(&standin);
    assert!(
        seen.contains("ssh.service/3//u1"),
        "journal fields, an absent one empty:\n{seen}"
    );
    assert!(seen.contains("web-1"), "the entry's host:\n{seen}");
    assert!(!seen.contains("this-host"), "not this machine's:\n{seen}");
    assert!(!seen.contains("cron"), "{seen}");
    assert_eq!(get(port, "/healthz"), "ok\n");
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_journal_running{input=\"journal\"}"),
        Some(1.0),
        "{metrics}"
    );

    // Appended while it runs.
    append(&journal, &failures(4..=5));
    expect_total(&standin, &daemon, 5);

    // kill -9: journalctl sees its pipe close and goes too.
    daemon.kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journalctl_runs(&journal) {
        assert!(Instant::now() < deadline, "journalctl outlived the daemon");
        thread::sleep(Duration::from_millis(100));
    }
    append(&journal, &failures(6..=8));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    expect_total(&standin, &daemon, 8);
    let seen = text(&standin);
    for user in ["u6", "u7", "u8"] {
        assert!(seen.contains(user), "{user} after the restart:\n{seen}");
    }

    // A reload that changes the input's journal settings restarts journalctl after the cursor.
    let changed = std::fs::read_to_string(&config)
        .unwrap()
        .replace("journal\"}", "journal\", identifiers: [sshd, cron]}");
    assert_ne!(changed, std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, changed).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", WAIT);
    append(&journal, &failures(9..=10));
    expect_total(&standin, &daemon, 10);
    assert_eq!(daemon.stop().code(), Some(0));

    // Stopped cleanly: a restart reads on after the last entry, and nothing came since.
    append(&journal, &failures(11..=11));
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    expect_total(&standin, &daemon, 11);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_missing_journalctl_shows_in_healthz_metrics_and_check() {
    let standin = Standin::start();
    let dir = Dir::new("journal-missing");
    let port = free_port();
    let config = config(&dir, &standin, port, ", units: [ssh.service]");
    // `check` describes the input; it can read the (empty) folder.
    let mut check = dir.command();
    check.arg("check").arg("-c").arg(&config);
    let summary = stdout_ok(&mut check);
    assert!(
        summary.contains(&format!(
            "journal: journal (units ssh.service; directory {}), 1 rule: sshd-failed",
            dir.join("journal").display()
        )),
        "{summary}"
    );
    // Without journalctl in PATH.
    let mut check = dir.command();
    check
        .arg("check")
        .arg("-c")
        .arg(&config)
        .env("PATH", "/nonexistent");
    let output = check.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("input `journal`: the journal cannot be read: cannot run journalctl"),
        "{stderr}"
    );
    let daemon = Daemon::start(dir.path(), &config, &[("PATH", "/nonexistent")]);
    // Listening once the daemon has started.
    daemon.wait_for_log("dingtail running", WAIT);
    let deadline = Instant::now() + WAIT;
    let health = loop {
        let health = get(port, "/healthz");
        if health.contains("journal") || Instant::now() > deadline {
            break health;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        health.contains("journal: input `journal`: cannot run journalctl"),
        "{health}{}",
        daemon.describe()
    );
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_journal_running{input=\"journal\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "dingtail_journal_restarts_total{input=\"journal\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}

#[test]
fn journalctl_json_piped_into_test_matches_as_the_daemon_does() {
    let standin = Standin::start();
    let dir = Dir::new("journal-test");
    let config = config(&dir, &standin, free_port(), "");
    append(&dir.join("journal"), &failures(1..=4));
    let json = Command::new("journalctl")
        .arg(format!("--directory={}", dir.join("journal").display()))
        .args(["-o", "json", "--no-pager"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let mut test = dir.command();
    test.arg("test")
        .arg("-c")
        .arg(&config)
        .arg("--input")
        .arg("journal")
        .arg("-")
        .arg("--render")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = test.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &json.stdout).unwrap();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("scanned 8 lines"), "{out}");
    assert!(out.contains("sshd-failed: 4 "), "{out}");
    assert!(out.contains("ssh.service/3//u4"), "{out}");
    assert!(out.contains("web-1"), "{out}");
}

/// `dingtail tail` follows a journald input as the daemon does and prints `journal: MESSAGE`.
#[test]
fn tail_follows_the_journal() {
    let standin = Standin::start();
    let dir = Dir::new("journal-tail");
    let config = config(&dir, &standin, free_port(), "");
    append(&dir.join("journal"), &failures(1..=1));
    let mut cmd = dir.command();
    cmd.arg("tail")
        .arg("-c")
        .arg(&config)
        .arg("--input")
        .arg("journal")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut tail = Daemon::spawn(cmd);
    tail.wait_for("the first entry", WAIT, |t| {
        t.stdout()
            .iter()
            .any(|line| line == "journal: Failed password for u1 from 203.0.113.9")
    });
    append(&dir.join("journal"), &failures(2..=2));
    tail.wait_for("an appended entry", WAIT, |t| {
        t.stdout().iter().any(|line| line.contains("for cron2"))
    });
    assert_eq!(tail.stop().code(), Some(0));
}
