//! A robot of the config from the shell (issue 12): `dingtail send --robot NAME` and `dingtail
//! check --ping ROBOT` against the DingTalk stand-in, with the robot's secret, keywords and rate
//! history; refusals when the robot is blocked or its budget is spent; and DingTalk's errmsg with
//! the hint that fits it, in `send`, in the daemon's log and in a metric's label.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, describe, run_expect};
use crate::support::http::{free_port, get};
use crate::support::standin::{Failure, For, Standin, StandinConfig};

/// A config whose robot `ops` is `robot_yaml` (from the stand-in, or edited), with `per_minute`
/// replaced when given.
fn config(dir: &Dir, robot_yaml: &str, per_minute: Option<u32>) -> PathBuf {
    let mut robot = robot_yaml.to_string();
    if let Some(n) = per_minute {
        robot = robot
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("per_minute:") {
                    format!("    per_minute: {n}")
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        robot.push('\n');
    }
    dir.create("logs/app.log", "");
    dir.create(
        "rules.d/a.yaml",
        "- name: boom\n  input: app\n  match: BOOM\n  robot: ops\n",
    );
    dir.create(
        "dingtail.yaml",
        format!(
            "state_dir: state\ninputs:\n  app:\n    paths: [logs/app.log]\nrobots:\n{robot}rules: [rules.d/*.yaml]\n"
        ),
    )
}

fn send_robot(dir: &Dir, config: &PathBuf, text: &str) -> Command {
    let mut cmd = dir.command();
    cmd.args(["send", "--robot", "ops", "-c"])
        .arg(config)
        .args(["--text", text, "--retries", "0"]);
    cmd
}

/// Runs `cmd`, expects `code`, checks that neither token nor secret is shown; returns stderr.
fn run(cmd: &mut Command, code: i32, standin: &Standin) -> String {
    let output = run_expect(cmd, code);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains(standin.token()),
        "the token leaked{}",
        describe(cmd, &output)
    );
    if let Some(secret) = standin.secret() {
        assert!(!stderr.contains(secret), "the secret leaked");
    }
    stderr
}

#[test]
fn send_robot_uses_the_configured_secret_and_keywords_and_refuses_a_spent_budget() {
    let dir = Dir::new("send-robot");
    let standin = Standin::start_with(StandinConfig {
        keywords: vec!["告警".into()],
        ..StandinConfig::signed()
    });
    let config = config(&dir, &standin.robot_yaml("ops"), Some(2));
    // A script's DINGTAIL_WEBHOOK does not override the configured robot.
    run(
        send_robot(&dir, &config, "disk full on db-1").env(
            "DINGTAIL_WEBHOOK",
            "https://wrong.example/robot/send?access_token=x",
        ),
        0,
        &standin,
    );
    run(
        &mut send_robot(&dir, &config, "disk full again"),
        0,
        &standin,
    );
    let delivered = standin.delivered();
    assert_eq!(delivered.len(), 2, "{:#?}", standin.received());
    let text = delivered[0].visible_text();
    assert!(
        text.contains("disk full on db-1") && text.contains("告警"),
        "{text}"
    );
    // Two sends in the window spend a budget of two: the third is not sent.
    let stderr = run(&mut send_robot(&dir, &config, "one too many"), 5, &standin);
    assert!(
        stderr.contains("robot `ops`: not sent: it has spent its budget (2 messages in the last"),
        "{stderr}"
    );
    assert_eq!(standin.received().len(), 2, "nothing was sent");
    // `check --ping` asks the same budget.
    let stderr = run(
        dir.command()
            .args(["check", "-c"])
            .arg(&config)
            .args(["--ping", "ops"]),
        5,
        &standin,
    );
    assert!(stderr.contains("spent its budget"), "{stderr}");
    assert_eq!(standin.received().len(), 2);
}

#[test]
fn check_ping_sends_a_test_text_that_counts_in_the_history() {
    let dir = Dir::new("check-ping");
    let standin = Standin::start_with(StandinConfig::signed());
    let config = config(&dir, &standin.robot_yaml("ops"), Some(1));
    let output = run_expect(
        dir.command()
            .args(["check", "-c"])
            .arg(&config)
            .args(["--ping", "ops"]),
        0,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("dingtail.yaml: valid"), "{stdout}");
    let delivered = standin.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0]
            .visible_text()
            .starts_with("dingtail check --ping: a test message from"),
        "{}",
        delivered[0].visible_text()
    );
    // The ping spent the budget of one.
    let stderr = run(&mut send_robot(&dir, &config, "x"), 5, &standin);
    assert!(stderr.contains("spent its budget"), "{stderr}");
    // An unknown robot is a usage error, with a suggestion.
    let stderr = run(
        dir.command()
            .args(["check", "-c"])
            .arg(&config)
            .args(["--ping", "opz"]),
        2,
        &standin,
    );
    assert!(
        stderr.contains("no robot named `opz` (it has ops; did you mean `ops`?)"),
        "{stderr}"
    );
}

#[test]
fn a_throttled_robot_is_not_sent_to_again_until_its_block_ends() {
    let dir = Dir::new("send-robot-throttled");
    let standin = Standin::start_with(StandinConfig::signed());
    let config = config(&dir, &standin.robot_yaml("ops"), None);
    standin.throttle_now();
    let stderr = run(&mut send_robot(&dir, &config, "x"), 5, &standin);
    assert!(stderr.contains("130101"), "{stderr}");
    assert_eq!(standin.received().len(), 1);
    // The block is recorded in the state: the next try does not reach DingTalk at all.
    let stderr = run(&mut send_robot(&dir, &config, "x"), 5, &standin);
    assert!(
        stderr.contains("not sent: DingTalk throttled it; it is blocked until"),
        "{stderr}"
    );
    assert_eq!(standin.received().len(), 1, "nothing more was sent");
}

#[test]
fn the_errmsg_is_shown_with_the_hint_that_fits_it() {
    let dir = Dir::new("send-robot-errmsg");
    let standin = Standin::start_with(StandinConfig {
        keywords: vec!["告警".into()],
        ..StandinConfig::signed()
    });
    let robot = standin.robot_yaml("ops");
    // No keywords in the config: DingTalk says which check failed.
    let without_keywords: String = robot
        .lines()
        .filter(|line| !line.contains("keywords"))
        .map(|line| format!("{line}\n"))
        .collect();
    let config = config(&dir, &without_keywords, None);
    let stderr = run(&mut send_robot(&dir, &config, "x"), 3, &standin);
    assert!(
        stderr.contains(
            "rejected by DingTalk (errcode 310000, errmsg \"keywords not in content\"): the message holds none of the robot's security keywords: list them under the robot's `keywords:`"
        ),
        "{stderr}"
    );
    // A wrong secret: the signature.
    let secret = standin.secret().unwrap().to_string();
    let wrong = robot.replace(&secret, "SECwrong0000");
    let config = self::config(&dir, &wrong, None);
    let stderr = run(&mut send_robot(&dir, &config, "告警 x"), 3, &standin);
    assert!(
        stderr.contains(
            "errmsg \"sign not match\"): the signature does not match: set the robot's `secret:`"
        ),
        "{stderr}"
    );
    // The address allowlist (the stand-in answers as DingTalk does).
    let config = self::config(&dir, &robot, None);
    standin.fail(
        Failure::Refuse(310_000, "ip 203.0.113.7 not in whitelist"),
        For::Requests(1),
    );
    let stderr = run(&mut send_robot(&dir, &config, "告警 x"), 3, &standin);
    assert!(
        stderr.contains("errmsg \"ip 203.0.113.7 not in whitelist\"): this host's public address"),
        "{stderr}"
    );
    // The plain `send` shows it too.
    standin.fail(
        Failure::Refuse(310_000, "invalid timestamp"),
        For::Requests(1),
    );
    let mut cmd = dir.command();
    cmd.arg("send")
        .env("DINGTAIL_WEBHOOK", standin.webhook_url())
        .env("DINGTAIL_SECRET", &secret)
        .args(["--text", "告警 x", "--retries", "0"]);
    let stderr = run(&mut cmd, 3, &standin);
    assert!(
        stderr.contains("errmsg \"invalid timestamp\"): the signed timestamp is more than an hour off DingTalk's clock"),
        "{stderr}"
    );
}

#[test]
fn the_daemon_logs_the_errmsg_and_counts_the_kind_of_refusal() {
    let dir = Dir::new("run-errmsg");
    let standin = Standin::start_with(StandinConfig::signed());
    let secret = standin.secret().unwrap().to_string();
    let robot = standin
        .robot_yaml("ops")
        .replace(&secret, "SECwrong0000")
        .replace("    per_minute:", "    linger: 0s\n    per_minute:");
    let config = config(&dir, &robot, None);
    let port = free_port();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("listen: 127.0.0.1:{port}\n{text}")).unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    daemon.wait_for_log("dingtail running", Duration::from_secs(15));
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("logs/app.log"))
        .unwrap()
        .write_all(b"BOOM\n")
        .unwrap();
    daemon.wait_for_log("errmsg \"sign not match\"", Duration::from_secs(15));
    let log = daemon.stderr().join("\n");
    assert!(
        log.contains("robot `ops`: rejected by DingTalk (errcode 310000, errmsg \"sign not match\"): the signature does not match"),
        "{log}"
    );
    assert!(!log.contains(&secret) && !log.contains(standin.token()));
    let metrics = get(port, "/metrics").1;
    assert!(
        metrics.contains("dingtail_messages_rejected_total{robot=\"ops\",reason=\"signature\"} 1"),
        "{metrics}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
