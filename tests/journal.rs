//! The journald input's reader against real journal files (issue 14): entries are written with
//! `systemd-journal-remote` (Debian package `systemd-journal-remote`, installed by `.ci/run`)
//! into a folder and read back by the real `journalctl --directory`, through appends while it
//! runs, a stop and a resume from the last cursor, journalctl being killed, filters, and a
//! missing journalctl.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use dingtail::config::{Decoding, InputConfig, JournaldConfig, StartAt};
use dingtail::journal::{
    JournalEntry, JournalEvent, JournalInput, JournalReader, JournalStatus, ReaderOptions,
};
use tokio::sync::mpsc;

const JOURNAL_REMOTE: &str = "/usr/lib/systemd/systemd-journal-remote";

/// One entry in the export format: text fields, and binary ones (written with their length, as
/// the format requires for values that are not text).
pub(crate) struct Export {
    fields: Vec<(String, Vec<u8>)>,
}

impl Export {
    /// Entry `n` of a test: its own time, host, and `MESSAGE=message n`.
    pub(crate) fn new(n: u64) -> Export {
        let micros = 1_700_000_000_000_000 + n * 1_000_000;
        let mut export = Export { fields: Vec::new() };
        export
            .field("__REALTIME_TIMESTAMP", &micros.to_string())
            .field("_SOURCE_REALTIME_TIMESTAMP", &(micros + 7).to_string())
            .field("_HOSTNAME", "web-1")
            .field("MESSAGE", &format!("message {n}"));
        export
    }

    pub(crate) fn field(&mut self, name: &str, value: &str) -> &mut Export {
        self.bytes(name, value.as_bytes())
    }

    /// Adds a field (several of the same name make a repeated field, except `MESSAGE`, which
    /// is replaced).
    pub(crate) fn bytes(&mut self, name: &str, value: &[u8]) -> &mut Export {
        if name == "MESSAGE" {
            self.fields.retain(|(kept, _)| kept != "MESSAGE");
        }
        self.fields.push((name.to_string(), value.to_vec()));
        self
    }

    fn write(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.fields {
            let text = value.iter().all(|b| *b >= 0x20 && *b != 0x7f) && value.is_ascii();
            if text {
                out.extend_from_slice(format!("{name}=").as_bytes());
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(format!("{name}\n").as_bytes());
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// Appends `entries` to `DIR/test.journal` with systemd-journal-remote.
pub(crate) fn append(dir: &Path, entries: &[Export]) {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing: apt-get install systemd-journal-remote (.ci/run does)"
    );
    let mut input = Vec::new();
    for entry in entries {
        entry.write(&mut input);
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(dir.join("test.journal"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "systemd-journal-remote failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Export> {
    range.map(Export::new).collect()
}

fn input(
    dir: &Path,
    journald: JournaldConfig,
    start_at: StartAt,
    decoding: Decoding,
) -> JournalInput {
    JournalInput::from_config(&InputConfig {
        name: "journal".into(),
        paths: vec![],
        exclude: vec![],
        start_at,
        poll_interval: Duration::from_secs(1),
        max_line_bytes: 65_536,
        multiline: None,
        decoding,
        journald: Some(JournaldConfig {
            directory: Some(dir.to_path_buf()),
            ..journald
        }),
        timestamp: None,
    })
    .unwrap()
}

fn everything() -> JournaldConfig {
    JournaldConfig {
        units: vec![],
        identifiers: vec![],
        priority: None,
        directory: None,
    }
}

fn options() -> ReaderOptions {
    ReaderOptions {
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(400),
        ..ReaderOptions::standard()
    }
}

/// What a reader reported, gathered from its events.
struct Seen {
    events: mpsc::Receiver<JournalEvent>,
    entries: Vec<JournalEntry>,
    statuses: Vec<JournalStatus>,
}

impl Seen {
    fn new(events: mpsc::Receiver<JournalEvent>) -> Seen {
        Seen {
            events,
            entries: Vec::new(),
            statuses: Vec::new(),
        }
    }

    /// Gathers events until `done` holds (panics after 20 s, showing what came).
    async fn until(&mut self, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => self.take(event),
                Ok(None) => panic!("the reader stopped while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; messages {:?}, statuses {:?}",
                    self.messages(),
                    self.statuses
                ),
            }
        }
    }

    /// Gathers whatever comes within `quiet`.
    async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.events.recv()).await {
            self.take(event);
        }
    }

    fn take(&mut self, event: JournalEvent) {
        match event {
            JournalEvent::Entries { input, entries } => {
                assert_eq!(&*input, "journal");
                self.entries.extend(entries);
            }
            JournalEvent::Status { status, .. } => self.statuses.push(status),
            JournalEvent::Skipped { reason, .. } => panic!("skipped output: {reason}"),
        }
    }

    fn messages(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.record.text.clone()).collect()
    }

    fn running(&self) -> usize {
        self.statuses.iter().filter(|s| s.is_running()).count()
    }
}

fn spawn(
    input: JournalInput,
    cursor: Option<String>,
    options: ReaderOptions,
) -> (JournalReader, Seen) {
    let (sender, receiver) = mpsc::channel(8);
    (
        JournalReader::spawn(input, cursor, options, sender),
        Seen::new(receiver),
    )
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| format!("message {n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_entries_follow_appends_resume_from_the_cursor_and_survive_a_killed_journalctl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut first = entries(1..=3);
    first[0]
        .field("PRIORITY", "3")
        .field("SYSLOG_IDENTIFIER", "sshd")
        .field("_SYSTEMD_UNIT", "ssh.service")
        .field("REPEATED", "a")
        .field("REPEATED", "b");
    append(&dir, &first);

    let journal = input(&dir, everything(), StartAt::Beginning, Decoding::default());
    let (reader, mut seen) = spawn(journal.clone(), None, options());
    seen.until("the first entries", |s| s.entries.len() >= 3)
        .await;
    assert_eq!(seen.messages(), expected(1..=3));
    let sshd = &seen.entries[0];
    assert_eq!(sshd.host(), Some("web-1"));
    assert_eq!(sshd.record.context.get("SYSLOG_IDENTIFIER"), Some("sshd"));
    assert_eq!(
        sshd.record.context.values("REPEATED").collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        sshd.record.time,
        Some(UNIX_EPOCH + Duration::from_micros(1_700_000_001_000_007)),
        "the sender's time"
    );
    assert!(reader.status().is_running());

    // Appended while journalctl follows.
    append(&dir, &entries(4..=5));
    seen.until("the appended entries", |s| s.entries.len() >= 5)
        .await;
    assert_eq!(seen.messages(), expected(1..=5));

    // journalctl dies: the reader reports it and restarts it after the last cursor.
    let JournalStatus::Running { pid } = reader.status() else {
        panic!("not running: {:?}", reader.status());
    };
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    seen.until("a restart", |s| s.running() >= 2).await;
    assert!(
        seen.statuses.iter().any(
            |s| matches!(s, JournalStatus::Exited { reason, .. } if reason.contains("signal: 9"))
        ),
        "{:?}",
        seen.statuses
    );
    append(&dir, &entries(6..=6));
    seen.until("the entry after the restart", |s| s.entries.len() >= 6)
        .await;
    seen.settle(Duration::from_millis(500)).await;
    assert_eq!(
        seen.messages(),
        expected(1..=6),
        "nothing lost, nothing repeated"
    );

    // Stopped; entries come while nobody reads; a new reader resumes after the last cursor.
    let cursor = seen.entries.last().unwrap().cursor.clone();
    reader.stop().await;
    // More than ten: journalctl's follow mode shows only ten unless told otherwise.
    append(&dir, &entries(7..=20));
    let (reader, mut seen) = spawn(journal, Some(cursor), options());
    seen.until("the entries written while stopped", |s| {
        s.entries.len() >= 14
    })
    .await;
    seen.settle(Duration::from_millis(500)).await;
    assert_eq!(seen.messages(), expected(7..=20));
    reader.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_filters_byte_values_and_a_bad_cursor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut old = entries(1..=2);
    old[1]
        .field("SYSLOG_IDENTIFIER", "sshd")
        .field("PRIORITY", "3");
    append(&dir, &old);

    // `start_at: end`: only what is appended once journalctl runs. When journalctl has looked
    // for the end is not observable, so entries 100, 101, … are appended until one arrives:
    // the old ones never do, and from the first that arrives on, none is missed.
    let journal = input(&dir, everything(), StartAt::End, Decoding::default());
    let (reader, mut seen) = spawn(journal.clone(), None, options());
    seen.until("journalctl running", |s| s.running() >= 1).await;
    let mut n_appended = 0;
    while seen.entries.is_empty() {
        assert!(n_appended < 40, "no appended entry arrived");
        append(&dir, &entries(100 + n_appended..=100 + n_appended));
        n_appended += 1;
        seen.settle(Duration::from_millis(250)).await;
    }
    let first: u64 = seen.messages()[0]
        .strip_prefix("message ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seen.messages(), expected(first..=99 + n_appended));
    reader.stop().await;

    // Filters: -t and -p together; a GBK message arrives as bytes and is decoded.
    let mut more = entries(4..=6);
    more[0]
        .field("SYSLOG_IDENTIFIER", "sshd")
        .field("PRIORITY", "6");
    more[1]
        .field("SYSLOG_IDENTIFIER", "sshd")
        .field("PRIORITY", "2")
        .bytes("MESSAGE", b"\xb6\xa9\xb5\xa5\xca\xa7\xb0\xdc");
    more[2]
        .field("SYSLOG_IDENTIFIER", "cron")
        .field("PRIORITY", "3");
    append(&dir, &more);
    let filtered = JournaldConfig {
        identifiers: vec!["sshd".into()],
        priority: Some("err".into()),
        ..everything()
    };
    let gbk = Decoding {
        encoding: encoding_rs::Encoding::for_label(b"gbk"),
        ..Decoding::default()
    };
    let (reader, mut seen) = spawn(
        input(&dir, filtered, StartAt::Beginning, gbk),
        None,
        options(),
    );
    seen.until("the sshd errors", |s| s.entries.len() >= 2)
        .await;
    seen.settle(Duration::from_millis(300)).await;
    assert_eq!(seen.messages(), ["message 2", "订单失败"]);
    reader.stop().await;

    // A cursor journalctl cannot use: said once, then `start_at` (here: the beginning).
    let journal = input(&dir, everything(), StartAt::Beginning, Decoding::default());
    let (reader, mut seen) = spawn(journal, Some("not-a-cursor".into()), options());
    seen.until("every entry", |s| {
        s.entries.len() >= 5 + n_appended as usize
    })
    .await;
    assert!(
        seen.statuses.iter().any(
            |s| matches!(s, JournalStatus::Exited { reason, .. } if reason.contains("cursor"))
        ),
        "{:?}",
        seen.statuses
    );
    let mut every = expected(1..=2);
    every.extend(expected(100..=99 + n_appended));
    every.extend([
        "message 4".to_string(),
        // No `encoding` here: the GBK bytes are read as UTF-8, bad bytes as U+FFFD.
        String::from_utf8_lossy(b"\xb6\xa9\xb5\xa5\xca\xa7\xb0\xdc").into_owned(),
        "message 6".to_string(),
    ]);
    assert_eq!(seen.messages(), every);
    reader.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_missing_journalctl_is_reported_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = input(tmp.path(), everything(), StartAt::End, Decoding::default());
    let options = ReaderOptions {
        program: PathBuf::from("/nonexistent/journalctl"),
        ..options()
    };
    let (reader, mut seen) = spawn(journal, None, options);
    seen.until("two tries", |s| {
        s.statuses
            .iter()
            .filter(|s| matches!(s, JournalStatus::Missing { .. }))
            .count()
            >= 2
    })
    .await;
    let JournalStatus::Missing { error, retry_in } = &seen.statuses[1] else {
        panic!("{:?}", seen.statuses);
    };
    assert!(error.contains("/nonexistent/journalctl"), "{error}");
    assert!(*retry_in <= Duration::from_millis(400));
    assert!(seen.entries.is_empty());
    reader.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn units_and_identifiers_must_both_match_and_units_take_systemds_own_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut all = entries(1..=4);
    all[0]
        .field("_SYSTEMD_UNIT", "ssh.service")
        .field("SYSLOG_IDENTIFIER", "sshd");
    all[1]
        .field("_SYSTEMD_UNIT", "ssh.service")
        .field("SYSLOG_IDENTIFIER", "other");
    all[2]
        .field("_SYSTEMD_UNIT", "cron.service")
        .field("SYSLOG_IDENTIFIER", "sshd");
    // PID 1 about the unit ("Failed to start …"): `-u` takes it.
    all[3]
        .field("_PID", "1")
        .field("UNIT", "ssh.service")
        .field("SYSLOG_IDENTIFIER", "systemd");
    append(&dir, &all);
    for (units, identifiers, want) in [
        (vec!["ssh"], vec!["sshd"], vec![1]),
        (vec!["ssh"], vec![], vec![1, 2, 4]),
        (vec![], vec!["sshd", "other"], vec![1, 2, 3]),
    ] {
        let journald = JournaldConfig {
            units: units.iter().map(|u| (*u).to_string()).collect(),
            identifiers: identifiers.iter().map(|i| (*i).to_string()).collect(),
            ..everything()
        };
        let journal = input(&dir, journald, StartAt::Beginning, Decoding::default());
        let (reader, mut seen) = spawn(journal, None, options());
        seen.until("the matching entries", |s| s.entries.len() >= want.len())
            .await;
        seen.settle(Duration::from_millis(300)).await;
        let want: Vec<String> = want.iter().map(|n| format!("message {n}")).collect();
        assert_eq!(
            seen.messages(),
            want,
            "units {units:?}, identifiers {identifiers:?}"
        );
        reader.stop().await;
    }
}

/// If dingtail is killed (kill -9), nothing kills its journalctl: the design relies on
/// journalctl noticing that its output pipe closed and exiting by itself, even when no entry
/// comes. Checked here with the exact command line the reader runs.
#[test]
fn journalctl_exits_when_the_reading_end_of_its_pipe_closes() {
    let tmp = tempfile::tempdir().unwrap();
    append(tmp.path(), &entries(1..=1));
    let journald = JournaldConfig {
        directory: Some(tmp.path().to_path_buf()),
        ..everything()
    };
    let mut child = Command::new("journalctl")
        .args(dingtail::journal::command::args(
            &journald,
            &dingtail::journal::Resume::End,
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "journalctl follows");
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "journalctl still runs 10 s after its pipe closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
