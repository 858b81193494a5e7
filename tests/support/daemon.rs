//! `Daemon`: the real `dingtail run` in the background, with its stdout (the `stdout` robot's
//! messages) and stderr (logs) collected line by line as they arrive, real signals, and a kill -9.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::harness::bin;

/// A running `dingtail` process.
pub struct Daemon {
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
}

/// Collects `reader`'s lines into `sink` on a thread.
fn collect(reader: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(line) => sink.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
}

impl Daemon {
    /// Starts `dingtail run -c config` in `dir` with the extra environment `env`.
    pub fn start(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir)
            .arg("run")
            .arg("-c")
            .arg(config)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            cmd.env(key, value);
        }
        Daemon::spawn(cmd)
    }

    /// Starts an arbitrary dingtail command with its output collected.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd.spawn().expect("spawn dingtail");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        Daemon {
            child: Some(child),
            stdout,
            stderr,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Lines printed to stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Lines logged to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything so far, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.stdout().join("\n"),
            self.stderr().join("\n")
        )
    }

    /// The stdout lines parsed as JSON (the `stdout` robot prints one body per line).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until `predicate` holds for this daemon, or panics after `timeout` with its output.
    pub fn wait_for(&self, what: &str, timeout: Duration, predicate: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if predicate(self) {
                return;
            }
            thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}{}",
            self.describe()
        );
    }

    /// Waits until a stderr line contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        self.wait_for(&format!("a log line with {text:?}"), timeout, |d| {
            d.stderr().iter().any(|line| line.contains(text))
        });
    }

    /// Sends `signal` (a name such as `HUP` or `TERM`) with the real `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            self.status = Some(child.wait().expect("wait"));
        }
    }

    /// Waits for the process to exit (panics after `timeout`) and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("daemon already reaped");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                // Let the reader threads take the last lines.
                thread::sleep(Duration::from_millis(100));
                self.status = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "dingtail did not exit within {timeout:?}{}",
                    self.describe()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(20))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}
