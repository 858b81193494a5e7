//! `scope: cluster` thresholds end to end (issue 15): two real `dingtail run` daemons with
//! their own state directories and host names, one real `redis-server` on 127.0.0.1 and the
//! DingTalk stand-in. A rule `when: {count: 10, within: 5s}, scope: cluster`: host A logs 6
//! matching lines, host B 6 — one alert reaches the chat, reporting the cluster's 12 matches,
//! and one resolved notice after the cluster's quiet; the same rule without `scope` (counted
//! per host: 6 each) sends nothing. With Redis down a host counts alone and still alerts; counts
//! that had not reached Redis survive a `kill -9` and count for the cluster after the restart.
//! `dingtail check` refuses `scope: cluster` without `cluster:` where it is written.

use std::thread;
use std::time::Duration;

use crate::support::cluster::{Host, lines, shown};
use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, run_expect};
use crate::support::redis::RedisServer;
use crate::support::standin::{Received, Standin, StandinConfig};

/// The same threshold twice: across the cluster, and (no `scope`) per host.
const RULES: &str = "- name: upstream-cluster
  input: app
  match: 'status=(?P<status>\\d+) host=(?P<upstream>\\S+)'
  robot: ops
  title: 'cluster {{ upstream }}'
  group_by: [upstream]
  when: {count: 10, within: 5s}
  resolve: {after: 5s}
  scope: cluster
- name: upstream-host
  input: app
  match: 'status=(?P<status>\\d+) host=(?P<upstream>\\S+)'
  robot: ops
  title: 'host {{ upstream }}'
  group_by: [upstream]
  when: {count: 10, within: 5s}
";

/// Waits until a delivered message satisfies `found`; false on timeout.
fn wait_delivered(standin: &Standin, timeout: Duration, found: impl Fn(&Received) -> bool) -> bool {
    standin.wait_for(
        |received| received.iter().any(|r| r.is_delivered() && found(r)),
        timeout,
    )
}

fn says(r: &Received, what: &str) -> bool {
    r.title().contains(what) || r.visible_text().contains(what)
}

fn count(standin: &Standin, what: &str) -> usize {
    standin.delivered().iter().filter(|r| says(r, what)).count()
}

#[test]
fn hosts_below_the_threshold_alone_fire_one_alert_with_the_clusters_count_and_resolve_once() {
    let standin = Standin::start_with(StandinConfig::signed());
    let redis = RedisServer::start();
    let a = Host::with("scope-a", &standin, &redis, RULES, "");
    let b = Host::with("scope-b", &standin, &redis, RULES, "");
    let (da, db) = (a.start_counting(), b.start_counting());
    let describe = |d: &[&Daemon]| {
        d.iter()
            .map(|d| d.describe())
            .collect::<Vec<_>>()
            .join("\n=====\n")
    };
    // A's six reach Redis (at most a second) before B's six arrive in one write, so the count
    // that crosses 10 is B's flush and the cluster holds 12 when the alert fires.
    a.append(&lines("db-1", 6, "a"));
    thread::sleep(Duration::from_millis(2500));
    b.append(&lines("db-1", 6, "b"));
    let fired = wait_delivered(&standin, Duration::from_secs(20), |r| {
        says(r, "cluster db-1")
    });
    assert!(
        fired,
        "no cluster alert:\n{}{}",
        shown(&standin),
        describe(&[&da, &db])
    );
    let resolved = wait_delivered(&standin, Duration::from_secs(25), |r| {
        r.title().contains("[resolved]")
    });
    assert!(
        resolved,
        "no resolved notice:\n{}{}",
        shown(&standin),
        describe(&[&da, &db])
    );
    // Time for a second alert or resolution, if either host were to send one.
    thread::sleep(Duration::from_secs(3));
    let delivered = standin.delivered();
    let alerts: Vec<&Received> = delivered
        .iter()
        .filter(|r| says(r, "cluster db-1") && !r.title().contains("[resolved]"))
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "one alert for the cluster:\n{}",
        shown(&standin)
    );
    let text = alerts[0].visible_text();
    assert!(
        text.contains("12 matches within 5 s"),
        "the alert reports the cluster's count at firing (all 12): {text}"
    );
    let resolutions: Vec<&Received> = delivered
        .iter()
        .filter(|r| r.title().contains("[resolved]"))
        .collect();
    assert_eq!(resolutions.len(), 1, "{}", shown(&standin));
    let text = resolutions[0].visible_text();
    assert!(text.contains("12 matches"), "{text}");
    assert!(
        resolutions[0].title().contains("upstream-cluster"),
        "{}",
        resolutions[0].title()
    );
    // The same threshold counted per host (6 each) never fired.
    assert_eq!(count(&standin, "host db-1"), 0, "{}", shown(&standin));
    assert_eq!(count(&standin, "upstream-host"), 0, "{}", shown(&standin));
}

const SLOW: &str = "- name: upstream-cluster
  input: app
  match: 'status=(?P<status>\\d+) host=(?P<upstream>\\S+)'
  robot: ops
  title: 'cluster {{ upstream }}'
  group_by: [upstream]
  when: {count: 10, within: 30s}
  scope: cluster
";

#[test]
fn redis_down_counts_on_the_host_alone_and_counts_not_in_redis_survive_a_kill_9() {
    let standin = Standin::start_with(StandinConfig::signed());
    let mut redis = RedisServer::start();
    let a = Host::with("scope-down-a", &standin, &redis, SLOW, "");
    let b = Host::with("scope-down-b", &standin, &redis, SLOW, "");
    let (mut da, db) = (a.start_counting(), b.start_counting());
    redis.stop();
    // Three matches that cannot reach Redis: kept (and stored) for the cluster.
    a.append(&lines("db-1", 3, "pre"));
    da.wait_for_log(
        "cannot count `scope: cluster` thresholds through Redis",
        Duration::from_secs(10),
    );
    // Meanwhile host A counts alone and does not go silent: ten more fire its own alert (sent
    // directly once the fallback starts).
    a.append(&lines("db-1", 10, "alone"));
    let alone = wait_delivered(&standin, Duration::from_secs(20), |r| {
        r.visible_text().contains("10 matches within 30 s")
    });
    assert!(
        alone,
        "no alert from the host alone:
{}{}",
        shown(&standin),
        da.describe()
    );
    // Killed (once the delivery is recorded), Redis back, restarted: the three stored counts go
    // to the cluster.
    thread::sleep(Duration::from_secs(1));
    da.kill9();
    redis.restart();
    let da = a.start_counting();
    thread::sleep(Duration::from_millis(1500));
    // B's eight make the cluster's 11 (3 of A's from before the crash): one alert.
    b.append(&lines("db-1", 8, "b"));
    let fired = wait_delivered(&standin, Duration::from_secs(20), |r| {
        r.visible_text().contains("11 matches within 30 s")
    });
    assert!(
        fired,
        "no cluster alert with the 3 counts from before the kill -9:\n{}{}\n=====\n{}",
        shown(&standin),
        da.describe(),
        db.describe()
    );
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count(&standin, "11 matches within 30 s"),
        1,
        "{}",
        shown(&standin)
    );
}

#[test]
fn check_refuses_scope_cluster_without_a_cluster_section_where_it_is_written() {
    let dir = Dir::new("scope-check");
    dir.create(
        "dingtail.yaml",
        "inputs:\n  app:\n    paths: [app.log]\nrobots:\n  ops:\n    webhook: stdout\nrules: [rules.yaml]\n",
    );
    dir.create("app.log", "");
    dir.create(
        "rules.yaml",
        "- name: a\n  input: app\n  match: x\n  robot: ops\n  when: {count: 5, within: 1m}\n  scope: cluster\n- name: b\n  input: app\n  match: y\n  robot: ops\n  scope: fleet\n",
    );
    let output = run_expect(dir.command().args(["check", "-c", "dingtail.yaml"]), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for want in [
        "rules.yaml:6:10: rule `a`: `scope: cluster` needs a top-level `cluster:` (the hosts count through its Redis)",
        "rules.yaml:11:10: rule `b`: `scope` must be `host` or `cluster`, not `fleet`",
    ] {
        assert!(
            stderr.lines().any(|line| line == want),
            "missing {want:?} in:\n{stderr}"
        );
    }
}
