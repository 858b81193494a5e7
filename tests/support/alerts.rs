//! `Alerting`: an end-to-end setup that counts. The DingTalk stand-in (signed, a keyword, 20
//! messages per 3 s), a config (in English) whose one rule matches `ALERT` in the input `app`,
//! helpers that write alert lines and run the real `logrotate`, and the count of alerts delivered
//! (a summary stands for the alerts its title counts).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, bin};
use crate::support::standin::{Received, Standin, StandinConfig};

/// A directory with a config, and the stand-in it sends to.
pub struct Alerting {
    /// The test's directory (`logs/` for the logs, `state/` for the state).
    pub dir: Dir,
    /// The DingTalk stand-in.
    pub standin: Standin,
    /// The config file.
    pub config: PathBuf,
}

impl Alerting {
    /// A setup named `name` whose input follows `paths` (relative to the directory, quoted as
    /// given), with `extra` appended to the config's top level (e.g. `listen: ...`).
    pub fn new(name: &str, paths: &[&str], extra: &str) -> Alerting {
        let standin = Standin::start_with(StandinConfig {
            keywords: vec!["告警".into()],
            window: Duration::from_secs(3),
            throttle_pause: Duration::from_secs(30),
            ..StandinConfig::signed()
        });
        let dir = Dir::new(name);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        dir.create(
            "rules.yaml",
            "- name: alert
  input: app
  match: 'ALERT (?P<tag>\\S+) (?P<n>\\d+)'
  severity: warning
  robot: ops
  title: 'alert {{ tag }} {{ n }}'
  template: '{{ line }}'
",
        );
        let paths: Vec<String> = paths
            .iter()
            .map(|p| format!("\"{}\"", dir.join(p).display()))
            .collect();
        let config = dir.create(
            "dingtail.yaml",
            format!(
                "state_dir: {}
language: en
{extra}inputs:
  app:
    paths: [{}]
    start_at: beginning
    poll_interval: 100ms
robots:
{}    linger: 200ms
rules: [\"rules.yaml\"]
",
                dir.join("state").display(),
                paths.join(", "),
                standin.robot_yaml("ops")
            ),
        );
        Alerting {
            dir,
            standin,
            config,
        }
    }

    /// `dingtail run` on the config.
    pub fn start(&self) -> Daemon {
        Daemon::start(self.dir.path(), &self.config, &[])
    }

    /// `dingtail run` on the config through `wrapper` (e.g. `prlimit --nofile=1024:1024`).
    pub fn start_through(&self, wrapper: &[&str]) -> Daemon {
        let (program, args) = wrapper.split_first().expect("a wrapper command");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(bin())
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("DINGTAIL_WEBHOOK")
            .env_remove("DINGTAIL_SECRET")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        Daemon::spawn(cmd)
    }

    /// A path under `logs/`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(name)
    }

    /// The alerts delivered so far.
    pub fn total(&self) -> u64 {
        self.standin.delivered().iter().map(count_of).sum()
    }

    /// Waits until at least `n` alerts were delivered; panics after `timeout` with the daemon's
    /// output.
    pub fn wait_total(&self, daemon: &Daemon, n: u64, timeout: Duration) {
        let ok = self.standin.wait_for(
            |received| {
                received
                    .iter()
                    .filter(|r| r.is_delivered())
                    .map(count_of)
                    .sum::<u64>()
                    >= n
            },
            timeout,
        );
        assert!(
            ok,
            "{} of {n} alerts delivered within {timeout:?}{}",
            self.total(),
            daemon.describe()
        );
    }

    /// The total once nothing more arrives: what a duplicate would add shows up within this
    /// pause (several lingers and poll intervals).
    pub fn settled_total(&self) -> u64 {
        thread::sleep(Duration::from_secs(2));
        self.total()
    }

    /// Runs the real `logrotate` once, forced, on `log` in `mode` (`create`, `copytruncate`).
    pub fn logrotate(&self, log: &Path, mode: &str) {
        let conf = self.dir.create(
            format!("logrotate-{mode}.conf"),
            format!(
                "{} {{\n    rotate 50\n    missingok\n    nocompress\n    {mode}\n}}\n",
                log.display()
            ),
        );
        let output = Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(self.dir.join("logrotate.state"))
            .arg(&conf)
            .output()
            .expect("run logrotate (apt-get install -y logrotate)");
        assert!(
            output.status.success(),
            "logrotate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Alert lines `ALERT <tag> <i>` for every `i` in `range`.
pub fn alerts(tag: &str, range: std::ops::Range<u64>) -> String {
    range
        .map(|i| format!("2026-11-25 10:00:00 app ALERT {tag} {i} disk failing\n"))
        .collect()
}

/// Appends `text` to `path` (creating it), in one write.
pub fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// How many alerts a delivered message stands for (the stand-in reads the English titles).
pub fn count_of(received: &Received) -> u64 {
    received.alerts()
}

/// A plain HTTP/1.1 GET on 127.0.0.1; returns the body ([`crate::support::http::get`]).
pub fn get(port: u16, path: &str) -> String {
    crate::support::http::get(port, path).1
}

pub use crate::support::http::{free_port, metric};
