//! What a valid configuration meets on this machine (issue 12): `dingtail check` warns about
//! inputs without files (and whether their directory exists), files the service user cannot read
//! (`--as`), a state directory it cannot create or write, no rules, rules no input feeds and
//! robots no rule uses — exit 0, or 1 with `--strict`; `dingtail run` logs the same at start and
//! exports `dingtail_input_files{input}`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, describe, run_expect};
use crate::support::http::{free_port, get};

const CONFIG: &str = "\
state_dir: private/state
inputs:
  web:
    paths: [logs/*.log]
  gone:
    paths: [nowhere/*.log]
robots:
  ops:
    webhook: stdout
  spare:
    webhook: stdout
rules: [rules.d/*.yaml]
";

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
}

/// `dingtail check -c dingtail.yaml`, as an unprivileged user: as root, `--as 65534:65534`
/// (nobody), which is what this option is for; otherwise the user running the tests.
fn check(dir: &Dir) -> Command {
    let mut cmd = dir.command();
    cmd.args(["check", "-c", "dingtail.yaml"]);
    if is_root() {
        cmd.args(["--as", "65534:65534"]);
    }
    cmd
}

/// A directory nobody but its owner may enter or write, and a log only its owner may read.
fn lock_up(dir: &Dir) {
    std::fs::set_permissions(dir.join("private"), std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(
        dir.join("logs/secret.log"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
}

fn setup(name: &str) -> Dir {
    let dir = Dir::new(name);
    // The service user must reach the files at all: the test directory is world-traversable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.create("dingtail.yaml", CONFIG);
    dir.create("logs/open.log", "");
    dir.create("logs/secret.log", "");
    std::fs::create_dir(dir.join("private")).unwrap();
    for file in ["dingtail.yaml", "logs/open.log"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(dir.join("logs"), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn check_warns_about_what_keeps_a_valid_config_from_working() {
    let dir = setup("survey-check");
    dir.create(
        "rules.d/a.yaml",
        "- name: web-errors\n  input: web\n  match: ERROR\n  robot: ops\n\
         - name: gone-errors\n  input: gone\n  match: ERROR\n  robot: ops\n",
    );
    std::fs::set_permissions(
        dir.join("rules.d/a.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(dir.join("rules.d"), std::fs::Permissions::from_mode(0o755)).unwrap();
    lock_up(&dir);
    let output = run_expect(&mut check(&dir), 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `-c dingtail.yaml`: the paths are as relative as the config's.
    let expected = [
        "warning: dingtail.yaml:6:5: input `gone`: no file matches now (`nowhere/*.log`: the directory nowhere does not exist); it is watched, but nothing is read until one appears",
        "warning: dingtail.yaml:4:5: input `web`: cannot read 1 file: logs/secret.log (permission denied)",
        "warning: dingtail.yaml:1:1: state_dir private/state does not exist and cannot be created: private is not writable (permission denied)",
        "warning: rules.d/a.yaml:5: rule `gone-errors`: no input feeds it: `gone` matches no file now",
        "warning: dingtail.yaml:10:3: robot `spare` is used by no rule",
    ];
    for want in &expected {
        assert!(
            stderr.lines().any(|line| line == *want),
            "missing {want:?} in:\n{stderr}"
        );
    }
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .count(),
        expected.len(),
        "{stderr}"
    );
    assert!(
        stdout.contains("  web: 2 files now, 1 rule: web-errors\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  gone: 0 files now, 1 rule: gone-errors\n"),
        "{stdout}"
    );

    // --strict fails on them.
    let mut strict = check(&dir);
    strict.arg("--strict");
    let output = run_expect(&mut strict, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dingtail.yaml: 5 warnings (--strict)"),
        "{stderr}"
    );
}

#[test]
fn no_rules_at_all_and_a_clean_config() {
    let dir = setup("survey-empty");
    std::fs::create_dir(dir.join("nowhere")).unwrap();
    let output = run_expect(&mut check(&dir), 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "warning: dingtail.yaml:12:1: no rules: the inputs are read but nothing can alert"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("(`nowhere/*.log`: the directory nowhere exists)"),
        "the directory of the glob exists: {stderr}"
    );
    assert!(
        stderr.contains("robot `ops` is used by no rule"),
        "{stderr}"
    );

    // Every warning fixed: --strict passes, and the systemd unit's plain check too.
    let text = CONFIG
        .replace("state_dir: private/state", "state_dir: state")
        .replace("  gone:\n    paths: [nowhere/*.log]\n", "")
        .replace("  spare:\n    webhook: stdout\n", "");
    dir.create("dingtail.yaml", text);
    std::fs::set_permissions(
        dir.join("dingtail.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_file(dir.join("logs/secret.log")).unwrap();
    dir.create(
        "rules.d/a.yaml",
        "- name: web-errors\n  input: web\n  match: ERROR\n  robot: ops\n",
    );
    for path in ["rules.d", "rules.d/a.yaml"] {
        let mode = if path.ends_with(".yaml") {
            0o644
        } else {
            0o755
        };
        std::fs::set_permissions(dir.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut strict = check(&dir);
    strict.arg("--strict");
    let output = run_expect(&mut strict, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("warning"),
        "{}",
        describe(&strict, &output)
    );
}

#[test]
fn check_as_an_unknown_user_is_a_usage_error() {
    let dir = setup("survey-as");
    let output = run_expect(
        dir.command()
            .args(["check", "-c", "dingtail.yaml", "--as", "no-such-user-zz"]),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--as no-such-user-zz: no user `no-such-user-zz` in /etc/passwd"),
        "{stderr}"
    );
}

#[test]
fn run_logs_the_warnings_at_start_and_exports_the_files_per_input() {
    let dir = Dir::new("survey-run");
    let port = free_port();
    dir.create(
        "dingtail.yaml",
        CONFIG.replace(
            "state_dir: private/state",
            &format!("state_dir: state\nlisten: 127.0.0.1:{port}"),
        ),
    );
    dir.create("logs/a.log", "");
    dir.create("logs/b.log", "");
    dir.create(
        "rules.d/a.yaml",
        "- name: web-errors\n  input: web\n  match: ERROR\n  robot: ops\n",
    );
    let mut daemon = Daemon::start(dir.path(), &dir.join("dingtail.yaml"), &[]);
    daemon.wait_for_log("dingtail running", Duration::from_secs(15));
    let log = daemon.stderr().join("\n");
    assert!(
        log.contains("input `gone`: no file matches now")
            && log.contains("robot `spare` is used by no rule"),
        "{}",
        daemon.describe()
    );
    let metrics = get(port, "/metrics").1;
    assert!(
        metrics.contains("dingtail_input_files{input=\"web\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dingtail_input_files{input=\"gone\"} 0"),
        "{metrics}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
