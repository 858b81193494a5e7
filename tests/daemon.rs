//! `dingtail run` operated like a service: systemd notifications, reloads by SIGHUP and by saving a
//! rule file, `/metrics` and `/healthz`, and the README's quick start.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::http::{free_port, get, metric};

const WAIT: Duration = Duration::from_secs(15);

/// A config with one input over `logs/*.log`, a `stdout` robot that sends at once, and rules from
/// `rules.d/*.yaml`. `extra` is appended at the top level.
fn config(dir: &Dir, extra: &str) -> PathBuf {
    dir.create("logs/app.log", "");
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
state_dir: state
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: end
    poll_interval: 200ms
robots:
  console:
    webhook: stdout
    linger: 0s
rules: [\"rules.d/*.yaml\"]
{extra}"
        ),
    )
}

fn rule(name: &str, pattern: &str) -> String {
    format!(
        "- name: {name}
  input: app
  match: '{pattern}'
  severity: critical
  robot: console
  title: '{name} alert'
  template: '{{{{ line }}}}'
"
    )
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The text of every message printed so far (title and body), one string per message.
fn texts(daemon: &Daemon) -> Vec<String> {
    daemon
        .messages()
        .iter()
        .map(|message| message.to_string())
        .collect()
}

fn has_message_with(daemon: &Daemon, needle: &str) -> bool {
    texts(daemon).iter().any(|text| text.contains(needle))
}

/// Starts the daemon and waits until it tails (it logs that it is running).
fn start(dir: &Dir, config: &Path, env: &[(&str, &str)]) -> Daemon {
    let daemon = Daemon::start(dir.path(), config, env);
    daemon.wait_for_log("dingtail running", WAIT);
    daemon
}

/// Saves `contents` to `path` the way editors do: write a new file, rename it over the old one.
fn save(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let dir = Dir::new("notify");
    let config = config(&dir, "");
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let socket_env = socket_path.to_str().unwrap();
    let mut daemon = Daemon::start(
        dir.path(),
        &config,
        &[("NOTIFY_SOCKET", socket_env), ("WATCHDOG_USEC", "1000000")],
    );
    let mut received: Vec<String> = Vec::new();
    let mut next = |what: &str| -> String {
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let n = socket.recv(&mut buf).expect("a notification");
            let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
            received.push(datagram.clone());
            if datagram.contains(what) {
                return datagram;
            }
        }
        panic!("no {what} among {received:?}");
    };
    let ready = next("READY=1");
    assert!(
        ready.contains("STATUS="),
        "READY=1 comes with a status: {ready:?}"
    );
    // WATCHDOG_USEC=1s: keep-alives every 0.5 s, so two arrive well within a few seconds.
    next("WATCHDOG=1");
    next("WATCHDOG=1");
    daemon.signal("HUP");
    let reloading = next("RELOADING=1");
    assert!(
        reloading.contains("MONOTONIC_USEC="),
        "RELOADING=1 carries MONOTONIC_USEC: {reloading:?}"
    );
    next("READY=1");
    daemon.signal("TERM");
    next("STOPPING=1");
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", daemon.describe());
}

#[test]
fn a_broken_rule_file_keeps_the_old_rules_and_a_fixed_one_applies() {
    let dir = Dir::new("reload");
    let config = config(&dir, "");
    let rules = dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let log = dir.join("logs/app.log");
    let mut daemon = start(&dir, &config, &[]);

    append(&log, "ALPHA one\n");
    daemon.wait_for("the first alpha alert", WAIT, |d| {
        has_message_with(d, "ALPHA one")
    });

    // A broken regex: refused with file:line:column, the old rule keeps matching.
    save(&rules, &rule("beta", "BETA ("));
    daemon.wait_for_log("reload refused", WAIT);
    let refused = daemon.stderr().join("\n");
    assert!(
        refused.contains("a.yaml:3:"),
        "the refusal names file and line: {refused}"
    );
    append(&log, "ALPHA two\n");
    daemon.wait_for("alpha still alerting", WAIT, |d| {
        has_message_with(d, "ALPHA two")
    });

    // Fixed by just saving the file: the new rule applies, the old one is gone.
    save(&rules, &rule("beta", "BETA"));
    daemon.wait_for_log("reloaded", WAIT);
    append(&log, "ALPHA three\nBETA one\n");
    daemon.wait_for("the beta alert", WAIT, |d| has_message_with(d, "BETA one"));
    assert!(
        !has_message_with(&daemon, "ALPHA three"),
        "the removed rule must not match any more{}",
        daemon.describe()
    );

    // Changed and applied by SIGHUP alone (the file watcher is off for this config).
    assert_eq!(daemon.stop().code(), Some(0));
    let config = dir.create(
        "dingtail.yaml",
        std::fs::read_to_string(&config).unwrap() + "reload_on_change: false\n",
    );
    let mut daemon = start(&dir, &config, &[]);
    save(&rules, &rule("gamma", "GAMMA"));
    std::thread::sleep(Duration::from_millis(800));
    append(&log, "GAMMA early\n");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !has_message_with(&daemon, "GAMMA early"),
        "without reload_on_change a saved file waits for SIGHUP{}",
        daemon.describe()
    );
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", WAIT);
    append(&log, "GAMMA late\n");
    daemon.wait_for("the gamma alert after SIGHUP", WAIT, |d| {
        has_message_with(d, "GAMMA late")
    });
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn pending_batches_survive_a_reload_and_the_robot_uses_its_new_settings() {
    let dir = Dir::new("reload-pending");
    // A long linger: the matches are still gathering when the reload happens.
    let robot = "robots:
  console:
    webhook: stdout
    linger: 3s
";
    let main = "language: en
state_dir: state
inputs:
  app:
    paths: [\"logs/*.log\"]
    poll_interval: 200ms
rules: [\"rules.d/*.yaml\"]
";
    let config = dir.create("dingtail.yaml", format!("{main}{robot}"));
    dir.create("logs/app.log", "");
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let log = dir.join("logs/app.log");
    let mut daemon = start(&dir, &config, &[]);
    append(&log, "ALPHA 1\nALPHA 2\nALPHA 3\n");
    std::thread::sleep(Duration::from_millis(700));
    // The reload adds keyword security to the robot.
    save(&config, &format!("{main}{robot}    keywords: [\"告警\"]\n"));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", WAIT);
    daemon.wait_for("the summary", WAIT, |d| !d.messages().is_empty());
    let messages = daemon.messages();
    assert_eq!(
        messages.len(),
        1,
        "one summary for the burst{}",
        daemon.describe()
    );
    let title = messages[0]["markdown"]["title"]
        .as_str()
        .unwrap_or_default();
    assert!(
        title.contains("3 alerts"),
        "the exact count survived: {title}"
    );
    let text = messages[0]["markdown"]["text"].as_str().unwrap_or_default();
    for n in 1..=3 {
        assert!(text.contains(&format!("ALPHA {n}")), "sample {n}: {text}");
    }
    assert!(
        text.contains("告警"),
        "the new keyword applies to the next message: {text}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_line_whose_time_does_not_read_keeps_its_read_time_and_is_counted() {
    let dir = Dir::new("timestamp");
    let port = free_port();
    dir.create("logs/app.log", "");
    let config = dir.create(
        "dingtail.yaml",
        format!(
            "language: en
timezone: UTC
state_dir: state
listen: 127.0.0.1:{port}
inputs:
  app:
    paths: [\"logs/*.log\"]
    poll_interval: 200ms
    timestamp: {{pattern: '^(\\S+Z) ', format: rfc3339}}
robots:
  console:
    webhook: stdout
    linger: 0s
rules: [\"rules.d/*.yaml\"]
"
        ),
    );
    dir.create(
        "rules.d/a.yaml",
        "- name: alpha\n  input: app\n  match: ALPHA\n  robot: console\n  template: 'at {{ time }}: {{ line }}'\n",
    );
    let log = dir.join("logs/app.log");
    let mut daemon = start(&dir, &config, &[]);
    append(&log, "2020-01-02T03:04:05Z ALPHA dated\n");
    daemon.wait_for("the dated alert", WAIT, |d| {
        has_message_with(d, "ALPHA dated")
    });
    append(&log, "no time here ALPHA undated\n");
    daemon.wait_for("the undated alert", WAIT, |d| {
        has_message_with(d, "ALPHA undated")
    });
    let all = texts(&daemon).join("\n");
    assert!(
        all.contains("at 2020-01-02T03:04:05Z: 2020-01-02T03:04:05Z ALPHA dated"),
        "the line's own time: {all}"
    );
    assert!(
        !all.contains("at 2020-01-02T03:04:05Z: no time here"),
        "the undated line keeps its read time: {all}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, metrics) = get(port, "/metrics");
        let failures = metric(&metrics, "dingtail_timestamp_failures_total{input=\"app\"}");
        if failures == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failures {failures:?}\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn metrics_and_healthz_answer_and_move_with_the_lines() {
    let dir = Dir::new("metrics");
    let port = free_port();
    let config = config(&dir, &format!("listen: 127.0.0.1:{port}\n"));
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let log = dir.join("logs/app.log");
    let mut daemon = start(&dir, &config, &[]);

    let (status, body) = get(port, "/healthz");
    assert_eq!(status, 200, "healthz: {body}");
    let (status, before) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(before.contains("dingtail_files_watched"), "{before}");

    append(&log, "hello\nALPHA 1\nALPHA 2\nworld\n");
    daemon.wait_for("an alert", WAIT, |d| !d.messages().is_empty());
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, after) = get(port, "/metrics");
        let lines = metric(&after, "dingtail_lines_read_total{input=\"app\"}");
        let matches = metric(&after, "dingtail_matches_total{rule=\"alpha\"}");
        let sent = metric(&after, "dingtail_messages_sent_total{robot=\"console\"}");
        let files = metric(&after, "dingtail_files_watched");
        let bytes = metric(&after, "dingtail_bytes_read_total{input=\"app\"}");
        let pending = metric(&after, "dingtail_pending_events{robot=\"console\"}");
        // Gauges are refreshed every second: wait for them too.
        let budget = metric(&after, "dingtail_rate_budget_left{robot=\"console\"}");
        if lines == Some(4.0)
            && bytes == Some(28.0)
            && matches == Some(2.0)
            && sent.is_some_and(|n| n >= 1.0)
            && files == Some(1.0)
            && pending == Some(0.0)
            && budget.is_some_and(|n| n < 20.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counters did not move as expected: lines {lines:?}, bytes {bytes:?}, matches {matches:?}, sent {sent:?}, files {files:?}, pending {pending:?}, budget {budget:?}\n{after}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded", WAIT);
    let (_, after) = get(port, "/metrics");
    assert_eq!(
        metric(&after, "dingtail_reloads_total{outcome=\"ok\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn the_quick_start_config_checks_and_prints_messages() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let quickstart = root.join("examples/quickstart.yaml");
    let dir = Dir::new("quickstart");
    let state = dir.join("state");
    let mut check = dir.command();
    check.arg("check").arg("-c").arg(&quickstart);
    stdout_ok(&mut check);

    let state_env = state.to_str().unwrap();
    let mut daemon = Daemon::start(&root, &quickstart, &[("DINGTAIL_STATE_DIR", state_env)]);
    // The `console` robot prints messages for people: a banner with the title, then the text
    // with DingTalk's markdown made readable (no colour: stdout is not a terminal).
    daemon.wait_for("a message from the quick start", WAIT, |d| {
        d.stdout()
            .iter()
            .any(|line| line.starts_with("━━━ 【严重】quickstart："))
    });
    daemon.wait_for("the OOM kills, readable", WAIT, |d| {
        d.stdout()
            .iter()
            .any(|line| line == "- the kernel killed java (pid 4242)")
    });
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    let stdout = daemon.stdout().join("\n");
    assert!(daemon.messages().is_empty(), "no JSON bodies: {stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "no colour into a pipe: {stdout}"
    );
    assert!(
        !stdout.contains("**") && !stdout.contains("&nbsp;") && !stdout.contains("\\["),
        "markdown made readable: {stdout}"
    );
    assert!(
        state.join("state.db").exists(),
        "state lands in DINGTAIL_STATE_DIR"
    );
}

#[test]
fn a_reload_starts_and_stops_inputs_and_keeps_positions() {
    let dir = Dir::new("reload-inputs");
    let config = config(&dir, "");
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let app = dir.join("logs/app.log");
    let other = dir.create("other/other.log", "OMEGA before the input exists\n");
    let mut daemon = start(&dir, &config, &[]);
    append(&app, "ALPHA 1\n");
    daemon.wait_for("the first alert", WAIT, |d| has_message_with(d, "ALPHA 1"));

    // Add an input and a rule for it; drop nothing yet.
    let text = std::fs::read_to_string(&config).unwrap();
    let with_other = text.replace(
        "robots:",
        "  other:\n    paths: [\"other/*.log\"]\n    poll_interval: 200ms\nrobots:",
    );
    save(&config, &with_other);
    save(
        &dir.join("rules.d/b.yaml"),
        &rule("omega", "OMEGA").replace("input: app", "input: other"),
    );
    // Both saves may land in one debounced reload or in two.
    daemon.wait_for_log("reloaded: 2 inputs, 2 rules", WAIT);
    append(&other, "OMEGA after\n");
    append(&app, "ALPHA 2\n");
    daemon.wait_for("alerts from both inputs", WAIT, |d| {
        has_message_with(d, "OMEGA after") && has_message_with(d, "ALPHA 2")
    });
    assert!(
        !has_message_with(&daemon, "OMEGA before"),
        "an input added by a reload starts at the end (start_at: end){}",
        daemon.describe()
    );
    let n_alpha = |d: &Daemon| texts(d).iter().filter(|t| t.contains("ALPHA 1")).count();
    assert_eq!(n_alpha(&daemon), 1, "the kept input was not read again");

    // Remove the input again: its file is no longer read.
    std::fs::remove_file(dir.join("rules.d/b.yaml")).unwrap();
    save(&config, &text);
    daemon.wait_for_log("reloaded: 1 input, 1 rule", WAIT);
    append(&other, "OMEGA gone\n");
    append(&app, "ALPHA 3\n");
    daemon.wait_for("the alpha alert", WAIT, |d| has_message_with(d, "ALPHA 3"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !has_message_with(&daemon, "OMEGA gone"),
        "{}",
        daemon.describe()
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn a_crash_right_after_the_first_start_does_not_replay_old_lines() {
    let dir = Dir::new("first-start-crash");
    let config = config(&dir, "");
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let log = dir.create("logs/app.log", "ALPHA old, before dingtail was installed\n");
    let mut daemon = start(&dir, &config, &[]);
    // Killed before any line was written: `start_at: end` must still hold after the restart.
    daemon.kill9();
    let mut daemon = start(&dir, &config, &[]);
    append(&log, "ALPHA new\n");
    daemon.wait_for("the new alert", WAIT, |d| has_message_with(d, "ALPHA new"));
    assert!(
        !has_message_with(&daemon, "ALPHA old"),
        "lines from before the first start were replayed{}",
        daemon.describe()
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// Both Kubernetes examples: the sidecar and the node DaemonSet reading CRI logs (issue 14).
#[test]
fn the_kubernetes_examples_check() {
    for (example, rule) in [
        ("dingtail-sidecar.yaml", "app-exception"),
        ("daemonset.yaml", "pod-crash"),
    ] {
        check_kubernetes_example(example, rule);
    }
}

fn check_kubernetes_example(example: &str, rule: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/kubernetes").join(example)).unwrap();
    let dir = Dir::new("k8s");
    let mut n_files = 0;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
        if value["kind"] != "ConfigMap" {
            continue;
        }
        let Some(data) = value["data"].as_mapping() else {
            continue;
        };
        for (name, contents) in data {
            let name = name.as_str().unwrap();
            let contents = contents.as_str().unwrap().replace(
                "/etc/dingtail/rules.d/",
                &format!("{}/rules.d/", dir.path().display()),
            );
            let path = if name == "dingtail.yaml" {
                name.to_string()
            } else {
                format!("rules.d/{name}")
            };
            dir.create(path, contents);
            n_files += 1;
        }
    }
    assert!(n_files >= 2, "{example} carries a config and rules");
    let mut check = dir.command();
    check
        .arg("check")
        .arg("-c")
        .arg(dir.join("dingtail.yaml"))
        .env("DINGTALK_OPS_TOKEN", "t0k")
        .env("DINGTALK_OPS_SECRET", "SECx")
        .env("NODE_NAME", "node-1");
    let summary = stdout_ok(&mut check);
    assert!(summary.contains(rule), "{example}: {summary}");
}

#[test]
fn inputs_and_paths_added_later_start_at_the_end_across_restarts_and_reloads() {
    let dir = Dir::new("added-later");
    let config = config(&dir, "");
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let mut daemon = start(&dir, &config, &[]);
    assert_eq!(daemon.stop().code(), Some(0));

    // A path added to the input while stopped: its existing lines are history.
    let history = dir.create("more/old.log", "ALPHA history one\n");
    let text = std::fs::read_to_string(&config).unwrap();
    let with_more = text.replace(
        "paths: [\"logs/*.log\"]",
        "paths: [\"logs/*.log\", \"more/*.log\"]",
    );
    std::fs::write(&config, &with_more).unwrap();
    let mut daemon = start(&dir, &config, &[]);
    // A file created while the daemon runs under a glob it scanned is new: read from its start.
    dir.create("more/new.log", "ALPHA fresh file\n");
    daemon.wait_for("the new file's line", WAIT, |d| {
        has_message_with(d, "ALPHA fresh file")
    });
    append(&history, "ALPHA appended one\n");
    daemon.wait_for("the appended line", WAIT, |d| {
        has_message_with(d, "ALPHA appended one")
    });

    // A path added by a reload: the same.
    let other = dir.create("third/old.log", "ALPHA history two\n");
    save(
        &config,
        &with_more.replace("\"more/*.log\"]", "\"more/*.log\", \"third/*.log\"]"),
    );
    daemon.wait_for_log("reloaded", WAIT);
    std::thread::sleep(Duration::from_millis(500));
    append(&other, "ALPHA appended two\n");
    daemon.wait_for("the line appended after the reload", WAIT, |d| {
        has_message_with(d, "ALPHA appended two")
    });
    assert_eq!(daemon.stop().code(), Some(0));
    for old in ["ALPHA history one", "ALPHA history two"] {
        assert!(
            !has_message_with(&daemon, old),
            "history of a path added later was sent: {old}{}",
            daemon.describe()
        );
    }
    // And a restart reads none of it again.
    let mut daemon = start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(daemon.messages().is_empty(), "{}", daemon.describe());
}

#[test]
fn a_rate_above_dingtalks_limit_is_warned_about() {
    let dir = Dir::new("per-minute");
    let config = config(&dir, "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("    linger: 0s\n", "    linger: 0s\n    per_minute: 30\n"),
    )
    .unwrap();
    dir.create("rules.d/a.yaml", rule("alpha", "ALPHA"));
    let mut check = dir.command();
    check.arg("check").arg("-c").arg(&config);
    let output = crate::support::harness::run_expect(&mut check, 0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("robot `console`: per_minute 30 is above DingTalk's 20"),
        "{stderr}"
    );
}
