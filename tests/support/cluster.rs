//! `Host`: one daemon of a test cluster — its own directory, state, log (`logs/app.log`), rules
//! and host name — pointed at one robot of the DingTalk stand-in and one real `redis-server`
//! (the tests of shared silences and of `scope: cluster` thresholds).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::redis::RedisServer;
use crate::support::standin::Standin;

/// `n` lines the [`NGINX`] rule matches: `status=502 host=UPSTREAM request TAG-i`.
pub fn lines(upstream: &str, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("status=502 host={upstream} request {tag}-{i}"))
        .collect()
}

/// Titles and texts of the delivered messages, for failure messages.
pub fn shown(standin: &Standin) -> String {
    standin
        .delivered()
        .iter()
        .map(|r| format!("{} | {}", r.title(), r.visible_text().replace('\n', " / ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rules of [`Host::new`]: one nginx rule, keyed by nothing.
pub const NGINX: &str = "- name: nginx
  input: app
  match: 'status=(?P<status>\\d+) host=(?P<upstream>\\S+)'
  robot: ops
  title: 'nginx {{ status }} from {{ upstream }}'
";

/// One host: its directory, config and log.
pub struct Host {
    dir: Dir,
    config: PathBuf,
}

impl Host {
    /// A host with the [`NGINX`] rule.
    pub fn new(name: &str, standin: &Standin, redis: &RedisServer) -> Host {
        Host::with(name, standin, redis, NGINX, "")
    }

    /// A host with its own rules and `extra` top-level YAML (a `chat:` section).
    pub fn with(
        name: &str,
        standin: &Standin,
        redis: &RedisServer,
        rules: &str,
        extra: &str,
    ) -> Host {
        let dir = Dir::new(name);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("logs/app.log"), "").unwrap();
        dir.create("rules.yaml", rules);
        let config = dir.create(
            "dingtail.yaml",
            format!(
                "language: en
timezone: UTC
state_dir: state
host: {name}
inputs:
  app:
    paths: [\"logs/*.log\"]
    start_at: beginning
    poll_interval: 100ms
robots:
{}    linger: 200ms
rules: [\"rules.yaml\"]
cluster:
  redis: \"{}\"
  key_prefix: \"silences:\"
  lease: 3s
  fallback_after: 5s
{extra}",
                standin.robot_yaml("ops"),
                redis.url()
            ),
        );
        Host { dir, config }
    }

    /// Starts its daemon and waits until it runs and (with `scope: cluster` rules) counts
    /// through Redis.
    pub fn start_counting(&self) -> Daemon {
        let daemon = self.start();
        daemon.wait_for_log(
            "counting `scope: cluster` thresholds through Redis",
            Duration::from_secs(10),
        );
        daemon
    }

    /// Starts its daemon and waits until it runs.
    pub fn start(&self) -> Daemon {
        let daemon = Daemon::start(self.dir.path(), &self.config, &[]);
        daemon.wait_for_log("dingtail running", Duration::from_secs(10));
        daemon
    }

    /// Runs `dingtail ARGS[0] -c CONFIG ARGS[1..]`; its stdout (it must succeed).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = self.dir.command();
        cmd.arg(args[0])
            .arg("-c")
            .arg(&self.config)
            .args(&args[1..]);
        stdout_ok(&mut cmd)
    }

    /// Appends `lines` to its log in one write.
    pub fn append(&self, lines: &[String]) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("logs/app.log"))
            .unwrap();
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Its directory.
    pub fn state(&self) -> &Path {
        self.dir.path()
    }

    /// Its config file.
    pub fn config(&self) -> &Path {
        &self.config
    }
}
