//! The shipped rules (`rules/*.yaml`) against their real-format sample logs (`tests/fixtures/`),
//! through the real `dingtail test` binary and the quickstart config that wires them up (issue 4).

use std::path::{Path, PathBuf};

use crate::support::harness::{Dir, stdout_ok};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The "matches per rule" lines of `dingtail test` output, as (rule, count).
fn counts(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .skip_while(|line| *line != "matches per rule:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let (name, rest) = line.trim().split_once(": ").unwrap();
            let count = rest.split(' ').next().unwrap().parse().unwrap();
            (name.to_string(), count)
        })
        .collect()
}

/// Runs the quickstart rules of `input` over `fixture` and checks every rule's count.
fn check(input: &str, fixture: &str, expected: &[(&str, u64)]) -> String {
    let dir = Dir::new("shipped");
    let stdout = stdout_ok(
        dir.command()
            .arg("test")
            .arg("-c")
            .arg(repo("examples/quickstart.yaml"))
            .args(["--input", input])
            .arg(repo(&format!("tests/fixtures/{fixture}"))),
    );
    let expected: Vec<(String, u64)> = expected
        .iter()
        .map(|(rule, n)| (rule.to_string(), *n))
        .collect();
    assert_eq!(counts(&stdout), expected, "{stdout}");
    stdout
}

#[test]
fn nginx_5xx_in_the_access_log_without_health_checks() {
    let out = check("nginx-access", "nginx-access.log", &[("nginx-5xx", 4)]);
    assert!(out.contains("      status = 502\n"), "{out}");
    assert!(
        !out.contains("/healthz"),
        "health checks are excluded: {out}"
    );
}

#[test]
fn nginx_upstream_timeouts_and_refusals() {
    let out = check(
        "nginx-error",
        "nginx-error.log",
        &[("nginx-upstream-timeout", 3), ("nginx-upstream-down", 2)],
    );
    assert!(
        out.contains("      upstream = http://10.0.0.12:8080/api/v1/orders\n"),
        "{out}"
    );
}

#[test]
fn java_exceptions_are_single_events_with_their_stack_traces() {
    let out = check(
        "java",
        "java-app.log",
        &[("java-exception", 3), ("java-out-of-memory", 1)],
    );
    assert!(out.contains("scanned 25 lines (8 events)"), "{out}");
    assert!(
        out.contains("      exception = java.lang.IllegalStateException\n"),
        "the first exception of a trace, not its cause: {out}"
    );
    assert!(
        out.contains("      exception = com.example.payments.PaymentDeclinedException\n"),
        "{out}"
    );
}

#[test]
fn python_tracebacks_are_single_events() {
    let out = check("python", "python-app.log", &[("python-traceback", 2)]);
    assert!(out.contains("scanned 25 lines (5 events)"), "{out}");
    assert!(
        out.contains("      exception = KeyError\n      message = 'customer_id'\n"),
        "{out}"
    );
    assert!(
        out.contains("      exception = ConnectionRefusedError\n"),
        "{out}"
    );
}

#[test]
fn linux_oom_kernel_sshd_systemd_and_disk_full() {
    let out = check(
        "syslog",
        "syslog.log",
        &[
            ("oom-killer", 2),
            ("kernel-error", 4),
            ("sshd-auth-failure", 5),
            ("systemd-unit-failed", 2),
            ("disk-full", 2),
        ],
    );
    assert!(
        out.contains("      unit = postgresql@15-main.service\n"),
        "{out}"
    );
    assert!(out.contains("      ip = 2001:db8::7\n"), "{out}");
}

#[test]
fn mysql_deadlocks_and_errors() {
    check(
        "mysql",
        "mysql-error.log",
        &[("disk-full", 1), ("mysql-deadlock", 2), ("mysql-error", 3)],
    );
}

#[test]
fn postgres_fatal_panic_and_deadlocks() {
    let out = check(
        "postgres",
        "postgresql.log",
        &[
            ("disk-full", 2),
            ("postgres-fatal", 4),
            ("postgres-deadlock", 1),
        ],
    );
    assert!(out.contains("      level = PANIC\n"), "{out}");
}

#[test]
fn redis_warnings() {
    check(
        "redis",
        "redis.log",
        &[("disk-full", 1), ("redis-warning", 5)],
    );
}

#[test]
fn kubernetes_crashloops_and_failing_probes() {
    let out = check(
        "kubernetes",
        "kubelet.log",
        &[("kubernetes-crashloop", 2), ("kubernetes-probe-failed", 3)],
    );
    assert!(
        out.contains("      pod = default/api-7d9f8c6b5-x2k4q\n"),
        "{out}"
    );
}

#[test]
fn the_quickstart_config_checks_and_its_logs_are_the_fixtures() {
    let dir = Dir::new("quickstart");
    let stdout = stdout_ok(
        dir.command()
            .arg("check")
            .arg("-c")
            .arg(repo("examples/quickstart.yaml")),
    );
    assert!(stdout.contains("rules: 18 in 8 files"), "{stdout}");
    assert!(
        stdout.contains("  java: 1 file now, 2 rules: java-exception, java-out-of-memory"),
        "{stdout}"
    );
    for entry in std::fs::read_dir(repo("tests/fixtures")).unwrap() {
        let fixture = entry.unwrap().path();
        let example = repo("examples/logs").join(fixture.file_name().unwrap());
        assert_eq!(
            std::fs::read(&fixture).unwrap(),
            std::fs::read(&example).unwrap(),
            "{} and {} differ",
            fixture.display(),
            example.display()
        );
    }
}

/// `dingtail test --render` of the quickstart over the syslog sample, in `language`; the message
/// to the `console` robot.
fn render_syslog(language: &str) -> String {
    let dir = Dir::new("render");
    let stdout = stdout_ok(
        dir.command()
            .env("DINGTAIL_LANGUAGE", language)
            .arg("test")
            .arg("-c")
            .arg(repo("examples/quickstart.yaml"))
            .args(["--input", "syslog", "--render"])
            .arg(repo("tests/fixtures/syslog.log")),
    );
    stdout
        .split("--- message to robot `console` ---\n")
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn render_shows_the_burst_summary_with_merged_mentions() {
    let message = render_syslog("en");
    assert!(
        message.starts_with("title: [critical] quickstart: 15 alerts from 5 rules\nat: @all\n"),
        "{message}"
    );
    // Critical rules first, and the sshd rule's own summary heading with its count.
    let oom = message.find("**oom-killer** · critical · 2× · ").unwrap();
    let sshd = message
        .find("**sshd-auth-failure** · 5 failed logins between")
        .unwrap();
    assert!(oom < sshd, "{message}");
    assert!(
        message.contains("- the kernel killed **java** (pid 4242)\n"),
        "{message}"
    );
    // The most frequent addresses and users, with exact counts.
    assert!(
        message.contains("ip: 203.0.113.9 ×4, 2001:db8::7 ×1 · user: root ×3, admin ×1, git ×1"),
        "{message}"
    );
}

#[test]
fn render_in_chinese_at_the_times_the_log_says() {
    let message = render_syslog("zh-CN");
    assert!(
        message.starts_with("title: 【严重】quickstart：5 条规则共 15 条告警\nat: @all\n"),
        "{message}"
    );
    // The syslog sample's own times (year-less: the year nearest now), in Shanghai time as
    // written, not the time the test ran.
    let oom = message.find("**oom-killer** · 严重 · 2 次 · ").unwrap();
    let heading = message.get(oom..).unwrap().lines().next().unwrap();
    assert!(
        heading.contains("-11-25 08:02:10 → 08:02:11 +08:00（1 秒）"),
        "{heading}"
    );
    assert!(message.contains("文件：/"), "{message}");
    assert!(
        message.contains("08:01:02 and 08:01:07 +08:00"),
        "the sshd heading's times are the log's: {message}"
    );
}
