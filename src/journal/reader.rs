//! `JournalReader`: runs `journalctl` for one journald input as a child process, reads its JSON
//! lines, and sends the entries (each with its cursor) to the daemon's main loop. The I/O edge
//! of `journal`: the command line ([`command`]) and the parsing ([`entry`]) are pure.
//!
//! journalctl is supervised. When it is missing or cannot start, or when it exits (it should
//! not: it follows), the reader says so ([`JournalStatus`], both as an event and on a watch
//! channel for `/healthz` and `check`), logs it once per change, waits with backoff (1 s doubling
//! to 60 s, jittered; reset once a run lasted `stable_after` or delivered entries) and starts it
//! again just after the last cursor it read, so a restart neither loses nor repeats an entry. If
//! journalctl rejects a stored cursor before reading anything (a journal that was replaced), the
//! reader falls back to the input's `start_at`, says so, and goes on.
//!
//! Back-pressure is end to end: the events channel is bounded, and while it is full the reader
//! stops reading, journalctl's pipe fills, and journalctl waits. The child is killed when the
//! reader is dropped or stopped (`kill_on_drop`); if dingtail itself is killed, journalctl sees
//! its pipe close and exits. A line longer than `max_entry_bytes` is dropped (reported), never
//! buffered whole.
//!
//! [`command`]: crate::journal::command
//! [`entry`]: crate::journal::entry

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::config::{InputConfig, JournaldConfig, StartAt};
use crate::journal::command::{self, Resume};
use crate::journal::entry::{EntryDecoder, JournalEntry, JournalLine};

/// Size of one read from journalctl's output.
const READ_CHUNK: usize = 64 * 1024;
/// How much of journalctl's standard error is kept for the status.
const STDERR_TAIL: usize = 2048;

/// What a journald input reads, from its configuration.
#[derive(Clone, Debug)]
pub struct JournalInput {
    /// The input's name.
    pub name: Arc<str>,
    /// Which entries.
    pub journald: JournaldConfig,
    /// Where to start when there is no cursor (or journalctl rejects it).
    pub start_at: StartAt,
    /// How entries become records.
    pub decoder: EntryDecoder,
    /// Longer output lines are dropped.
    pub max_entry_bytes: usize,
    /// With `start_at: end` and no cursor: start at this time instead of at the end. The
    /// daemon sets it to when an earlier run started reading this input, so that a restart
    /// before the first entry skips nothing logged meanwhile.
    pub since: Option<SystemTime>,
}

impl JournalInput {
    /// The journal side of `input`; `None` when it is not a journald input. A line of output is
    /// an entry with all its fields: it may be much longer than its message, so the bound is
    /// 8 × `max_line_bytes` + 1 MiB.
    pub fn from_config(input: &InputConfig) -> Option<JournalInput> {
        Some(JournalInput {
            name: Arc::from(input.name.as_str()),
            journald: input.journald.clone()?,
            start_at: input.start_at,
            decoder: EntryDecoder::new(&input.decoding, input.max_line_bytes),
            max_entry_bytes: input
                .max_line_bytes
                .saturating_mul(8)
                .saturating_add(1 << 20),
            since: None,
        })
    }
}

/// How the reader runs journalctl: the program and the restart timing.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// The journalctl to run (`journalctl`, found in `PATH`).
    pub program: PathBuf,
    /// The first wait before a restart.
    pub backoff_base: Duration,
    /// The longest wait before a restart.
    pub backoff_cap: Duration,
    /// A run that lasted this long resets the backoff.
    pub stable_after: Duration,
}

impl ReaderOptions {
    /// `journalctl` from `PATH`, restarts after 1 s doubling to 60 s, reset after 10 s of run.
    pub fn standard() -> ReaderOptions {
        ReaderOptions {
            program: PathBuf::from("journalctl"),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            stable_after: Duration::from_secs(10),
        }
    }
}

/// What journalctl is doing, for logs, metrics, `check` and `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalStatus {
    /// Being started.
    Starting,
    /// Running and followed.
    Running {
        /// Its process id.
        pid: u32,
    },
    /// It could not be started (not installed, not executable); retried after `retry_in`.
    Missing {
        /// Why, with the program's name.
        error: String,
        /// The wait before the next try.
        retry_in: Duration,
    },
    /// It ended (or its output could not be read); restarted after `retry_in`.
    Exited {
        /// Its exit status and the end of what it wrote to standard error.
        reason: String,
        /// The wait before the restart.
        retry_in: Duration,
    },
}

impl JournalStatus {
    /// True while journalctl runs.
    pub fn is_running(&self) -> bool {
        matches!(self, JournalStatus::Running { .. })
    }

    /// The wait before the next try, for `Missing` and `Exited`.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            JournalStatus::Missing { retry_in, .. } | JournalStatus::Exited { retry_in, .. } => {
                Some(*retry_in)
            }
            JournalStatus::Starting | JournalStatus::Running { .. } => None,
        }
    }
}

/// What a reader tells the main loop, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum JournalEvent {
    /// Entries read, in journal order. The last one's cursor is the input's checkpoint once
    /// their matches are stored (in the same transaction).
    Entries {
        /// The input's name.
        input: Arc<str>,
        /// The entries.
        entries: Vec<JournalEntry>,
    },
    /// Lines of output that were no entry (dropped, to be counted).
    Skipped {
        /// The input's name.
        input: Arc<str>,
        /// How many lines.
        n_lines: u64,
        /// Why (the last one's reason).
        reason: String,
    },
    /// journalctl's status changed.
    Status {
        /// The input's name.
        input: Arc<str>,
        /// The new status.
        status: JournalStatus,
    },
}

/// Follows the journal for one input until stopped or dropped.
#[derive(Debug)]
pub struct JournalReader {
    name: Arc<str>,
    status: watch::Receiver<JournalStatus>,
    task: JoinHandle<()>,
}

impl JournalReader {
    /// Starts following `input` just after `cursor` (its stored checkpoint), or from its
    /// `start_at` without one. Events go to `events`; when that channel closes, the reader stops.
    /// Must be called inside a tokio runtime.
    pub fn spawn(
        input: JournalInput,
        cursor: Option<String>,
        options: ReaderOptions,
        events: mpsc::Sender<JournalEvent>,
    ) -> JournalReader {
        let (status_tx, status) = watch::channel(JournalStatus::Starting);
        let name = input.name.clone();
        let supervisor = Supervisor {
            input,
            options,
            events,
            status: status_tx,
            last_cursor: cursor,
            fault_logged: false,
        };
        JournalReader {
            name,
            status,
            task: tokio::spawn(supervisor.run()),
        }
    }

    /// The input's name.
    pub fn input(&self) -> &str {
        &self.name
    }

    /// journalctl's status now.
    pub fn status(&self) -> JournalStatus {
        self.status.borrow().clone()
    }

    /// A receiver of status changes (for `/healthz`).
    pub fn watch_status(&self) -> watch::Receiver<JournalStatus> {
        self.status.clone()
    }

    /// Stops following: journalctl is killed and waited for.
    pub async fn stop(self) {
        let mut reader = self;
        reader.task.abort();
        match (&mut reader.task).await {
            Ok(()) => {}
            Err(err) if err.is_cancelled() => {}
            Err(err) => tracing::warn!(input = &*reader.name, "journal reader ended: {err}"),
        }
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The task behind a [`JournalReader`].
struct Supervisor {
    input: JournalInput,
    options: ReaderOptions,
    events: mpsc::Sender<JournalEvent>,
    status: watch::Sender<JournalStatus>,
    /// The cursor of the last entry read (or the stored one, before the first entry).
    last_cursor: Option<String>,
    /// A fault was logged and no healthy run has happened since.
    fault_logged: bool,
}

/// How one run of journalctl ended.
enum RunEnd {
    /// The main loop is gone: stop.
    Closed,
    /// journalctl ended or failed; restart.
    Restart {
        reason: String,
        n_entries: u64,
        ran_for: Duration,
        cursor_rejected: bool,
    },
    /// journalctl could not be started.
    Missing(String),
}

impl Supervisor {
    async fn run(mut self) {
        let first_start = self.input.since.unwrap_or_else(SystemTime::now);
        let mut backoff = Backoff::new(self.options.backoff_base, self.options.backoff_cap);
        let mut use_cursor = true;
        let mut restarted = false;
        loop {
            let resume = self.resume(use_cursor, restarted, first_start);
            restarted = true;
            if !self.report(JournalStatus::Starting).await {
                return;
            }
            let status = match self.run_once(&resume).await {
                RunEnd::Closed => return,
                RunEnd::Missing(error) => JournalStatus::Missing {
                    error,
                    retry_in: backoff.next_delay(rand::random::<f64>()),
                },
                RunEnd::Restart {
                    reason,
                    n_entries,
                    ran_for,
                    cursor_rejected,
                } => {
                    if n_entries > 0 || ran_for >= self.options.stable_after {
                        backoff.reset();
                        self.fault_logged = false;
                    }
                    if cursor_rejected && matches!(resume, Resume::AfterCursor(_)) {
                        tracing::warn!(
                            input = &*self.input.name,
                            "journalctl rejected the stored cursor ({reason}); reading from \
                             `start_at` instead"
                        );
                        use_cursor = false;
                    } else if n_entries > 0 {
                        use_cursor = true;
                    }
                    JournalStatus::Exited {
                        reason,
                        retry_in: backoff.next_delay(rand::random::<f64>()),
                    }
                }
            };
            let retry_in = status.retry_in().unwrap_or(self.options.backoff_base);
            if !self.report(status).await {
                return;
            }
            tokio::time::sleep(retry_in).await;
        }
    }

    /// Where the next run starts: after the last cursor (unless journalctl rejected it), else
    /// at `start_at`; a restart that never got a cursor and starts at the end takes what came
    /// since the first start (or since the input's `since`).
    fn resume(&self, use_cursor: bool, restarted: bool, first_start: SystemTime) -> Resume {
        match (&self.last_cursor, self.input.start_at) {
            (Some(cursor), _) if use_cursor => Resume::AfterCursor(cursor.clone()),
            (_, StartAt::Beginning) => Resume::Beginning,
            (_, StartAt::End) if restarted || self.input.since.is_some() => {
                Resume::Since(first_start)
            }
            (_, StartAt::End) => Resume::End,
        }
    }

    /// Starts journalctl once and pumps its output until it ends.
    async fn run_once(&mut self, resume: &Resume) -> RunEnd {
        let args = command::args(&self.input.journald, resume);
        let mut child = match Command::new(&self.options.program)
            .args(&args)
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                return RunEnd::Missing(format!(
                    "cannot run {}: {err}",
                    self.options.program.display()
                ));
            }
        };
        let started = Instant::now();
        let stderr = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(tail_of(stderr)));
        if !self
            .report(JournalStatus::Running {
                pid: child.id().unwrap_or_default(),
            })
            .await
        {
            return RunEnd::Closed;
        }
        let pumped = match child.stdout.take() {
            Some(stdout) => self.pump(stdout).await,
            None => Pumped::Ended {
                n_entries: 0,
                error: Some("no stdout pipe".into()),
            },
        };
        let (n_entries, read_error) = match pumped {
            Pumped::Closed => return RunEnd::Closed,
            Pumped::Ended { n_entries, error } => (n_entries, error),
        };
        // The output ended (or failed): make sure the process is gone too.
        if read_error.is_some() {
            if let Err(err) = child.start_kill() {
                // Already exited: `wait` below reports how.
                tracing::debug!(input = &*self.input.name, "cannot kill journalctl: {err}");
            }
        }
        let exit = match child.wait().await {
            Ok(status) => status.to_string(),
            Err(err) => format!("cannot wait for journalctl: {err}"),
        };
        let stderr = match stderr {
            Some(task) => task.await.unwrap_or_default(),
            None => String::new(),
        };
        let mut reason = format!("journalctl ended ({exit})");
        if let Some(error) = read_error {
            reason.push_str(&format!(", reading its output failed: {error}"));
        }
        if !stderr.is_empty() {
            reason.push_str(": ");
            reason.push_str(&stderr);
        }
        RunEnd::Restart {
            cursor_rejected: n_entries == 0 && stderr.contains("cursor"),
            reason,
            n_entries,
            ran_for: started.elapsed(),
        }
    }

    /// Reads journalctl's output to its end, sending one batch of entries per read.
    async fn pump(&mut self, mut stdout: impl AsyncRead + Unpin) -> Pumped {
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut lines = LineBuffer::new(self.input.max_entry_bytes);
        let mut n_entries = 0u64;
        loop {
            let n = match stdout.read(&mut chunk).await {
                Ok(0) => {
                    return Pumped::Ended {
                        n_entries,
                        error: None,
                    };
                }
                Ok(n) => n,
                Err(err) => {
                    return Pumped::Ended {
                        n_entries,
                        error: Some(err.to_string()),
                    };
                }
            };
            let mut entries = Vec::new();
            let mut n_skipped = 0u64;
            let mut reason = String::new();
            let decoder = &self.input.decoder;
            lines.push(chunk.get(..n).unwrap_or_default(), &mut |line| match line {
                Cut::Line(bytes) => match decoder.decode(bytes) {
                    Ok(JournalLine::Entry(entry)) => entries.push(entry),
                    Ok(JournalLine::Trailer(_)) => {}
                    Err(err) => {
                        n_skipped += 1;
                        reason = err.to_string();
                    }
                },
                Cut::TooLong(n_bytes) => {
                    n_skipped += 1;
                    reason = format!("an entry of more than {n_bytes} bytes");
                }
            });
            if n_skipped > 0 {
                tracing::warn!(
                    input = &*self.input.name,
                    n_lines = n_skipped,
                    "journalctl output skipped: {reason}"
                );
                let event = JournalEvent::Skipped {
                    input: self.input.name.clone(),
                    n_lines: n_skipped,
                    reason,
                };
                if self.events.send(event).await.is_err() {
                    return Pumped::Closed;
                }
            }
            if let Some(last) = entries.last() {
                n_entries += entries.len() as u64;
                self.last_cursor = Some(last.cursor.clone());
                let event = JournalEvent::Entries {
                    input: self.input.name.clone(),
                    entries,
                };
                if self.events.send(event).await.is_err() {
                    return Pumped::Closed;
                }
            }
        }
    }

    /// Publishes a status change; false when the main loop is gone. A fault is logged once
    /// until a healthy run clears it, however often journalctl is retried meanwhile.
    async fn report(&mut self, status: JournalStatus) -> bool {
        match &status {
            JournalStatus::Missing { error, .. } if !self.fault_logged => {
                tracing::error!(input = &*self.input.name, "journal input: {error}");
                self.fault_logged = true;
            }
            JournalStatus::Exited { reason, .. } if !self.fault_logged => {
                tracing::warn!(input = &*self.input.name, "journal input: {reason}");
                self.fault_logged = true;
            }
            JournalStatus::Running { pid } => {
                tracing::debug!(input = &*self.input.name, pid, "journalctl running");
            }
            _ => {}
        }
        self.status.send_replace(status.clone());
        let event = JournalEvent::Status {
            input: self.input.name.clone(),
            status,
        };
        self.events.send(event).await.is_ok()
    }
}

/// How reading journalctl's output ended.
enum Pumped {
    /// The main loop is gone.
    Closed,
    /// The output ended, or reading it failed.
    Ended {
        n_entries: u64,
        error: Option<String>,
    },
}

/// The end of what `stderr` says (at most [`STDERR_TAIL`] bytes, whitespace trimmed).
async fn tail_of(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    String::from_utf8_lossy(&tail).trim().replace('\n', "; ")
}

/// What [`LineBuffer`] found.
enum Cut<'a> {
    /// A complete line, without its `\n`.
    Line(&'a [u8]),
    /// A line longer than this many bytes, dropped.
    TooLong(usize),
}

/// Cuts a byte stream into lines of at most `max` bytes; longer ones are reported by length and
/// dropped, never buffered whole.
#[derive(Debug)]
struct LineBuffer {
    partial: Vec<u8>,
    max: usize,
    skipping: bool,
}

impl LineBuffer {
    fn new(max: usize) -> LineBuffer {
        LineBuffer {
            partial: Vec::new(),
            max: max.max(1),
            skipping: false,
        }
    }

    /// Takes the next bytes of the stream; calls `line` with each complete line or dropped one.
    fn push(&mut self, mut chunk: &[u8], line: &mut dyn FnMut(Cut<'_>)) {
        while !chunk.is_empty() {
            let Some(i) = memchr::memchr(b'\n', chunk) else {
                if !self.skipping {
                    if self.partial.len() + chunk.len() > self.max {
                        line(Cut::TooLong(self.max));
                        self.partial.clear();
                        self.skipping = true;
                    } else {
                        self.partial.extend_from_slice(chunk);
                    }
                }
                return;
            };
            let head = chunk.get(..i).unwrap_or_default();
            chunk = chunk.get(i + 1..).unwrap_or_default();
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + head.len() > self.max {
                line(Cut::TooLong(self.max));
                self.partial.clear();
            } else if self.partial.is_empty() {
                line(Cut::Line(head));
            } else {
                self.partial.extend_from_slice(head);
                line(Cut::Line(&self.partial));
                self.partial.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::journal::reader::{Cut, LineBuffer};

    fn cut(max: usize, chunks: &[&str]) -> Vec<Result<String, usize>> {
        let mut buffer = LineBuffer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            buffer.push(chunk.as_bytes(), &mut |line| {
                out.push(match line {
                    Cut::Line(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
                    Cut::TooLong(n) => Err(n),
                });
            });
        }
        out
    }

    #[test]
    fn lines_across_chunks_and_over_the_bound() {
        assert_eq!(
            cut(10, &["ab\ncd", "ef\n", "\nlast"]),
            [Ok("ab".into()), Ok("cdef".into()), Ok(String::new())]
        );
        assert_eq!(
            cut(5, &["123456\nok\n", "1234", "56789", "0\nafter\n"]),
            [Err(5), Ok("ok".into()), Err(5), Ok("after".into())]
        );
        assert_eq!(cut(5, &["12345\n"]), [Ok("12345".into())]);
    }
}
