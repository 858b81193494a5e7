//! Many hosts, one robot (issue 15): several real `dingtail run` daemons, each with its own
//! state directory, log and host name, share one robot of the DingTalk stand-in through a real
//! `redis-server` on 127.0.0.1. The robot's window is 3 s (the stand-in counts per window), so
//! every test takes seconds. Floods on every host stay within the budget with exact counts and
//! the hosts named; kill -9 of the sender, Redis stopped and restarted, and a host whose clock
//! is minutes off lose nothing and never exceed the budget.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::daemon::Daemon;
use crate::support::harness::Dir;
use crate::support::http::{free_port, get, metric};
use crate::support::redis::RedisServer;
use crate::support::standin::{Failure, For, Received, Standin, StandinConfig};

const WINDOW: Duration = Duration::from_secs(3);
/// Debian's libfaketime (package `faketime`).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn standin() -> Standin {
    Standin::start_with(StandinConfig {
        keywords: vec!["告警".into()],
        window: WINDOW,
        throttle_pause: Duration::from_secs(30),
        ..StandinConfig::signed()
    })
}

/// One host of the fleet: its directory, config, log and metrics port.
struct Host {
    name: String,
    dir: Dir,
    config: PathBuf,
    metrics_port: u16,
}

impl Host {
    fn new(name: &str, standin: &Standin, redis: &RedisServer, extra: &str) -> Host {
        let dir = Dir::new(name);
        let metrics_port = free_port();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        dir.create(
            "rules.yaml",
            "- name: flood
  input: app
  match: 'FLOOD (?P<n>\\d+)'
  severity: warning
  robot: ops
  title: 'flood line {{ n }}'
  template: '{{ line }}'
",
        );
        let config = dir.create(
            "dingtail.yaml",
            format!(
                "language: en
state_dir: state
host: {name}
listen: \"127.0.0.1:{metrics_port}\"
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: beginning
    poll_interval: 200ms
robots:
{}    linger: 200ms
rules: [\"rules.yaml\"]
cluster:
  redis: \"{}\"
  key_prefix: \"test:\"
  lease: 3s
  fallback_after: 5s
{extra}",
                standin.robot_yaml("ops"),
                redis.url()
            ),
        );
        Host {
            name: name.to_owned(),
            dir,
            config,
            metrics_port,
        }
    }

    fn start(&self) -> Daemon {
        Daemon::start(self.dir.path(), &self.config, &[])
    }

    fn log(&self) -> PathBuf {
        self.dir.join("logs/app.log")
    }
}

/// Appends `n` lines `FLOOD <i> on <host>` to `path`, spread over `over`, in 50 bursts.
fn flood(path: &Path, host: &str, n: u64, over: Duration) -> thread::JoinHandle<()> {
    let path = path.to_path_buf();
    let host = host.to_owned();
    thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let start = Instant::now();
        let bursts: u64 = 50;
        let per_burst = n.div_ceil(bursts);
        let mut i = 0;
        for burst in 0..bursts {
            let mut chunk = String::new();
            while i < n && i < (burst + 1) * per_burst {
                chunk.push_str(&format!("app FLOOD {i} on {host}\n"));
                i += 1;
            }
            file.write_all(chunk.as_bytes()).unwrap();
            let due = start + over.mul_f64((burst + 1) as f64 / bursts as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    })
}

fn delivered_total(standin: &Standin) -> u64 {
    standin.delivered().iter().map(Received::alerts).sum()
}

/// The counts of delivered messages marked as possible repeats.
fn marked(standin: &Standin) -> Vec<u64> {
    standin
        .delivered()
        .iter()
        .filter(|r| r.is_possible_repeat())
        .map(Received::alerts)
        .collect()
}

fn wait_total(standin: &Standin, daemons: &[&Daemon], n: u64, timeout: Duration) {
    let ok = standin.wait_for(
        |received| {
            received
                .iter()
                .filter(|r| r.is_delivered())
                .map(Received::alerts)
                .sum::<u64>()
                >= n
        },
        timeout,
    );
    if !ok {
        let logs: Vec<String> = daemons.iter().map(|d| d.describe()).collect();
        panic!(
            "delivered counts reached {} of {n} within {timeout:?}{}",
            delivered_total(standin),
            logs.join("\n=====\n")
        );
    }
}

/// Never more than the robot's 20 per window reached DingTalk, and it never throttled.
fn assert_within_budget(standin: &Standin) {
    let max = standin.max_in_any_window(WINDOW);
    assert!(max <= 20, "{max} requests within one {WINDOW:?} window");
    let throttled = standin
        .received()
        .iter()
        .filter(|r| matches!(r.errcode(), Some(130_101 | 410_100)))
        .count();
    assert_eq!(throttled, 0, "the robot was throttled");
}

/// Nothing lost, and whatever came twice was marked as a possible repeat: the total is `n`
/// plus at most the marked messages' counts.
fn assert_nothing_lost_repeats_marked(standin: &Standin, n: u64, most_marked: usize) {
    let total = delivered_total(standin);
    let marked = marked(standin);
    eprintln!(
        "{} messages, {total} matches for {n}, marked as possible repeats: {marked:?}, at most {} in a window",
        standin.delivered().len(),
        standin.max_in_any_window(WINDOW)
    );
    assert!(total >= n, "lost {} match(es)", n - total);
    assert!(
        total - n <= marked.iter().sum::<u64>(),
        "{} match(es) counted twice, only {marked:?} marked as possible repeats",
        total - n
    );
    assert!(
        marked.len() <= most_marked,
        "{} messages marked as possible repeats: {marked:?}",
        marked.len()
    );
}

/// The daemon that logged that it sends for the robot last.
fn sender_index(daemons: &[&Daemon]) -> Option<usize> {
    daemons.iter().position(|d| {
        d.stderr()
            .iter()
            .any(|l| l.contains("now sends for robot `ops`"))
    })
}

#[test]
fn a_flood_on_every_host_stays_within_one_budget_with_exact_counts_and_hosts_named() {
    let redis = RedisServer::start();
    let standin = standin();
    let hosts: Vec<Host> = ["web-1", "web-2", "web-3"]
        .iter()
        .map(|name| Host::new(name, &standin, &redis, ""))
        .collect();
    let mut daemons: Vec<Daemon> = hosts.iter().map(Host::start).collect();
    let writers: Vec<_> = hosts
        .iter()
        .map(|host| flood(&host.log(), &host.name, 3_000, Duration::from_secs(10)))
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let refs: Vec<&Daemon> = daemons.iter().collect();
    wait_total(&standin, &refs, 9_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        delivered_total(&standin),
        9_000,
        "every match counted exactly once"
    );
    assert_within_budget(&standin);
    // One sender folds the hosts' hand-offs: summaries name the hosts they stand for, several
    // at once (how many depends on how the sends fall; each host is named).
    let texts: Vec<String> = standin
        .delivered()
        .iter()
        .map(Received::visible_text)
        .collect();
    let hosts_named = |text: &str| {
        ["web-1", "web-2", "web-3"]
            .iter()
            .filter(|name| {
                text.contains(&format!("{name}, ")) || text.contains(&format!("{name} ·"))
            })
            .count()
    };
    assert!(
        texts.iter().any(|text| hosts_named(text) >= 2),
        "no summary names several hosts: {texts:#?}"
    );
    for name in ["web-1", "web-2", "web-3"] {
        assert!(
            texts.iter().any(|text| text.contains(name)),
            "{name} is named nowhere: {texts:#?}"
        );
    }
    assert!(marked(&standin).is_empty(), "nothing marked as a repeat");
    // /metrics: exactly one host is the robot's sender; all see Redis and three hosts.
    let mut senders = 0.0;
    for host in &hosts {
        let (status, text) = get(host.metrics_port, "/metrics");
        assert_eq!(status, 200);
        senders += metric(&text, "dingtail_cluster_sender{robot=\"ops\"}").unwrap();
        assert_eq!(
            metric(&text, "dingtail_cluster_connected"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(metric(&text, "dingtail_cluster_hosts"), Some(3.0), "{text}");
    }
    assert_eq!(senders, 1.0, "one sender for the robot");
    // `cluster status` names the hosts and the sender.
    let status = hosts[0]
        .dir
        .command()
        .args(["cluster", "status", "-c"])
        .arg(&hosts[0].config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for name in ["web-1", "web-2", "web-3"] {
        assert!(text.contains(name), "{text}");
    }
    assert!(text.contains("ops: sender web-"), "{text}");
    for daemon in &mut daemons {
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    }
}

#[test]
fn a_second_daemon_with_the_same_host_name_is_refused() {
    let redis = RedisServer::start();
    let standin = standin();
    let first = Host::new("web-1", &standin, &redis, "");
    let twin = Host::new("web-1", &standin, &redis, "");
    let mut daemon = first.start();
    daemon.wait_for_log("cluster: host `web-1`", Duration::from_secs(10));
    let mut second = twin.start();
    let status = second.wait_exit(Duration::from_secs(15));
    assert!(!status.success(), "{}", second.describe());
    assert!(
        second
            .stderr()
            .iter()
            .any(|l| l.contains("another dingtail is running as host `web-1`")),
        "{}",
        second.describe()
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn kill_9_of_the_sender_another_takes_over_and_nothing_is_lost() {
    let redis = RedisServer::start();
    let standin = standin();
    let hosts: Vec<Host> = ["web-1", "web-2", "web-3"]
        .iter()
        .map(|name| Host::new(name, &standin, &redis, ""))
        .collect();
    let mut daemons: Vec<Daemon> = hosts.iter().map(Host::start).collect();
    let writers: Vec<_> = hosts
        .iter()
        .map(|host| flood(&host.log(), &host.name, 2_000, Duration::from_secs(12)))
        .collect();
    thread::sleep(Duration::from_secs(5));
    let refs: Vec<&Daemon> = daemons.iter().collect();
    let sender = sender_index(&refs).expect("a sender after 5 s");
    assert!(
        delivered_total(&standin) > 0,
        "something was delivered before the kill"
    );
    daemons[sender].kill9();
    let killed_at = Instant::now();
    // Another takes over within two lease times (3 s each), and sends.
    let before = standin.delivered().len();
    let ok = standin.wait_for(
        |received| received.iter().filter(|r| r.is_delivered()).count() > before,
        Duration::from_secs(10),
    );
    assert!(ok, "nothing delivered after the sender was killed");
    let takeover = killed_at.elapsed();
    for writer in writers {
        writer.join().unwrap();
    }
    // The killed host comes back (its own matches not yet handed off are in its state).
    daemons[sender] = hosts[sender].start();
    let refs: Vec<&Daemon> = daemons.iter().collect();
    wait_total(&standin, &refs, 6_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(3));
    assert_nothing_lost_repeats_marked(&standin, 6_000, 1);
    assert_within_budget(&standin);
    assert!(
        takeover < Duration::from_secs(10),
        "took over after {takeover:?}"
    );
    for daemon in &mut daemons {
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    }
}

#[test]
fn redis_stopped_and_restarted_loses_nothing_and_the_fallback_stays_within_the_budget() {
    let mut redis = RedisServer::start_with_aof();
    let standin = standin();
    let hosts: Vec<Host> = ["web-1", "web-2", "web-3"]
        .iter()
        .map(|name| Host::new(name, &standin, &redis, ""))
        .collect();
    let mut daemons: Vec<Daemon> = hosts.iter().map(Host::start).collect();
    let writers: Vec<_> = hosts
        .iter()
        .map(|host| flood(&host.log(), &host.name, 3_000, Duration::from_secs(20)))
        .collect();
    thread::sleep(Duration::from_secs(4));
    redis.stop();
    let down_at = Instant::now();
    // Past fallback_after (4 s): every host sends directly at its share.
    let ok = standin.wait_for(
        |received| {
            received
                .iter()
                .any(|r| r.at > down_at + Duration::from_secs(4))
        },
        Duration::from_secs(15),
    );
    assert!(ok, "no direct send during the outage");
    thread::sleep(Duration::from_secs(4));
    redis.restart();
    for writer in writers {
        writer.join().unwrap();
    }
    let refs: Vec<&Daemon> = daemons.iter().collect();
    for daemon in &refs {
        assert!(
            daemon
                .stderr()
                .iter()
                .any(|l| l.contains("sending directly at this host's share")),
            "{}",
            daemon.describe()
        );
    }
    wait_total(&standin, &refs, 9_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(3));
    // A hand-off under way when Redis stopped may have reached it and also gone out directly
    // (marked) during the fallback: one per host at most.
    assert_nothing_lost_repeats_marked(&standin, 9_000, 3);
    assert_within_budget(&standin);
    for daemon in &mut daemons {
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    }
}

#[test]
fn a_host_whose_clock_is_minutes_off_has_no_effect_on_the_budget() {
    let redis = RedisServer::start();
    let standin = standin();
    let skewed = Host::new("web-skewed", &standin, &redis, "");
    let normal = Host::new("web-2", &standin, &redis, "");
    // The skewed host starts first and so becomes the sender. libfaketime moves its wall clock
    // 7 minutes back (not its monotonic clock, as an NTP-less host's would be).
    let mut cmd = std::process::Command::new(crate::support::harness::bin());
    cmd.current_dir(skewed.dir.path())
        .env("LD_PRELOAD", FAKETIME_LIB)
        .env("FAKETIME", "-7m")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("RUST_LOG", "info")
        .arg("run")
        .arg("-c")
        .arg(&skewed.config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut first = Daemon::spawn(cmd);
    // The clock really is off: its log lines are stamped 7 minutes back.
    first.wait_for_log("dingtail running", Duration::from_secs(10));
    let stamp = first.stderr()[0]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let logged = humantime::parse_rfc3339_weak(stamp.trim_end_matches('Z')).unwrap();
    let behind = std::time::SystemTime::now().duration_since(logged).unwrap();
    assert!(
        behind > Duration::from_secs(6 * 60),
        "the clock is not skewed: {stamp}"
    );
    first.wait_for_log("now sends for robot `ops`", Duration::from_secs(10));
    let mut second = normal.start();
    let writers = vec![
        flood(&skewed.log(), "web-skewed", 2_500, Duration::from_secs(8)),
        flood(&normal.log(), "web-2", 2_500, Duration::from_secs(8)),
    ];
    for writer in writers {
        writer.join().unwrap();
    }
    wait_total(&standin, &[&first, &second], 5_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered_total(&standin), 5_000);
    assert_within_budget(&standin);
    assert_eq!(first.stop().code(), Some(0), "{}", first.describe());
    assert_eq!(second.stop().code(), Some(0), "{}", second.describe());
}

#[test]
fn with_fallback_off_nothing_leaves_while_redis_is_down_and_everything_follows_after() {
    let mut redis = RedisServer::start_with_aof();
    let standin = standin();
    let hosts: Vec<Host> = ["web-1", "web-2"]
        .iter()
        .map(|name| Host::new(name, &standin, &redis, "  fallback: off\n"))
        .collect();
    let mut daemons: Vec<Daemon> = hosts.iter().map(Host::start).collect();
    for daemon in &daemons {
        daemon.wait_for_log("cluster: host `", Duration::from_secs(10));
    }
    redis.stop();
    let down_at = Instant::now();
    let writers: Vec<_> = hosts
        .iter()
        .map(|host| flood(&host.log(), &host.name, 500, Duration::from_secs(2)))
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // Well past fallback_after (5 s): still nothing sent.
    thread::sleep(Duration::from_secs(9));
    assert!(
        standin.received().iter().all(|r| r.at < down_at),
        "something was sent while Redis was down with `fallback: off`"
    );
    redis.restart();
    let refs: Vec<&Daemon> = daemons.iter().collect();
    wait_total(&standin, &refs, 1_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered_total(&standin), 1_000);
    assert_within_budget(&standin);
    for daemon in &mut daemons {
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    }
}

#[test]
fn a_sender_killed_while_its_message_is_on_the_way_the_next_sends_that_batch_alone_marked() {
    let redis = RedisServer::start();
    let standin = standin();
    let hosts: Vec<Host> = ["web-1", "web-2"]
        .iter()
        .map(|name| Host::new(name, &standin, &redis, ""))
        .collect();
    let mut daemons: Vec<Daemon> = hosts.iter().map(Host::start).collect();
    let writers: Vec<_> = hosts
        .iter()
        .map(|host| flood(&host.log(), &host.name, 1_500, Duration::from_secs(10)))
        .collect();
    thread::sleep(Duration::from_secs(3));
    let refs: Vec<&Daemon> = daemons.iter().collect();
    let sender = sender_index(&refs).expect("a sender after 3 s");
    // The next message is answered only after 4 s; the sender dies while it waits. DingTalk
    // (the stand-in) still delivers it.
    standin.fail(Failure::Slow(Duration::from_secs(4)), For::Requests(1));
    thread::sleep(Duration::from_millis(1500));
    daemons[sender].kill9();
    for writer in writers {
        writer.join().unwrap();
    }
    daemons[sender] = hosts[sender].start();
    let refs: Vec<&Daemon> = daemons.iter().collect();
    wait_total(&standin, &refs, 3_000, Duration::from_secs(60));
    thread::sleep(Duration::from_secs(3));
    let marked = marked(&standin);
    assert_eq!(
        marked.len(),
        1,
        "the batch that was on its way, sent again alone, marked"
    );
    assert_eq!(
        delivered_total(&standin),
        3_000 + marked[0],
        "only that batch counted twice"
    );
    assert_nothing_lost_repeats_marked(&standin, 3_000, 1);
    assert_within_budget(&standin);
    for daemon in &mut daemons {
        assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.describe());
    }
}
