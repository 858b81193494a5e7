//! `Follow`: a long-running `dingtail` process (e.g. `dingtail tail`) whose stdout and stderr
//! are collected live, so a test can write files and wait for what the binary printed. Waiting
//! is bounded: a timeout is a failure that prints what arrived so far and stderr.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::harness::Dir;

/// A running `dingtail` whose output is being collected.
pub struct Follow {
    child: Child,
    command: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Follow {
    /// Spawns `cmd` with stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> Follow {
        let command = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dingtail");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout piped");
        let lines = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches('\n')
                    .to_string();
                lines.lock().unwrap().push(line);
                buf.clear();
            }
        });
        let mut err = child.stderr.take().expect("stderr piped");
        let text = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Follow {
            child,
            command,
            stdout,
            stderr,
        }
    }

    /// `dingtail tail -c CONFIG` in `dir`.
    pub fn tail(dir: &Dir, config: &Path) -> Follow {
        let mut cmd = dir.command();
        cmd.arg("tail").arg("-c").arg(config);
        Follow::spawn(cmd)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `done(lines)` holds; panics with the output after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.stdout.lock().unwrap()) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}{}", self.describe());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until at least `n` lines were printed.
    pub fn wait_lines(&self, n: usize, timeout: Duration) {
        self.wait_for(timeout, &format!("{n} lines"), |lines| lines.len() >= n);
    }

    /// Sends `signal` (e.g. "TERM") and waits (at most 10 s) for the exit.
    pub fn stop_with(mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader threads drain the pipes.
                thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                panic!("no exit 10 s after SIGTERM{}", self.describe());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, asserts exit status 0, and returns every stdout line.
    pub fn stop(self) -> Vec<String> {
        let stdout = Arc::clone(&self.stdout);
        let describe = self.describe();
        let status = self.stop_with("TERM");
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIGTERM{describe}"
        );
        stdout.lock().unwrap().clone()
    }

    /// The command, the output so far and stderr, for failure messages.
    pub fn describe(&self) -> String {
        let lines = self.lines();
        let shown: Vec<&String> = lines.iter().rev().take(40).rev().collect();
        format!(
            "\n\ncommand: {}\nstdout ({} lines, last 40):\n{}\n\nstderr:\n{}\n",
            self.command,
            lines.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Best effort: the test is already over (or failing).
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}
