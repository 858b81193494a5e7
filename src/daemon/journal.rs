//! The daemon's journald inputs (issue 14): one `JournalReader` (a supervised `journalctl
//! --follow`) per input, their entries matched like a file's lines, and each input's cursor
//! kept as its checkpoint.
//!
//! The checkpoint rule is the files' one: the cursor of the last entry handed to the main
//! loop's intake is committed in the same transaction as the matches of the entries before it
//! (`Change::JournalCursors`, written by `Daemon::commit`), so a restart or a `kill -9` resumes
//! just after it, losing and repeating nothing. Before its first entry an input stores only
//! when it started reading; a restart then reads from that time (`JournalInput::since`).
//!
//! Reload: an input whose journal settings did not change keeps its reader; a changed one is
//! stopped and started again after the last cursor the main loop handled. Events of a replaced
//! reader still queued in the channel are dropped (a reader is known by the `Arc` of its name):
//! the new reader reads those entries again, so they are neither lost nor matched twice.
//!
//! journalctl's status goes to `dingtail_journal_running{input}`, `/healthz` (a problem while
//! it is missing or exited, with its reason), systemd's STATUS= and, on each failure,
//! `dingtail_journal_restarts_total{input}`; the reader itself logs each fault once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::config::{Config, InputConfig, StartAt};
use crate::daemon::Daemon;
use crate::journal::{JournalEvent, JournalInput, JournalReader, JournalStatus, ReaderOptions};
use crate::metrics::InputLabel;
use crate::state::JournalCursor;

/// How many reader events may wait for the main loop (then journalctl waits: back-pressure).
const CHANNEL: usize = 16;

/// The `Health` problem journald inputs report under.
const HEALTH: &str = "journal";

/// One running reader.
struct Running {
    /// The name the reader's events carry (compared by pointer: a replaced reader's is stale).
    name: Arc<str>,
    /// What it was started with, to tell whether a reload changes it.
    settings: Settings,
    /// Held for its `Drop`, which kills journalctl.
    #[allow(dead_code)] // Never read: owning it is the point.
    reader: JournalReader,
}

/// The settings of a journald input that its reader depends on.
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    journald: crate::config::JournaldConfig,
    start_at: StartAt,
    decoding: crate::config::Decoding,
    max_line_bytes: usize,
}

impl Settings {
    fn of(input: &InputConfig) -> Option<Settings> {
        Some(Settings {
            journald: input.journald.clone()?,
            start_at: input.start_at,
            decoding: input.decoding.clone(),
            max_line_bytes: input.max_line_bytes,
        })
    }
}

/// The journald inputs of a running daemon.
pub(crate) struct Journals {
    readers: BTreeMap<String, Running>,
    sender: mpsc::Sender<JournalEvent>,
    receiver: mpsc::Receiver<JournalEvent>,
    /// Each input's position as far as the main loop has handled its entries.
    positions: BTreeMap<String, JournalCursor>,
    /// The positions as the store holds them.
    saved: BTreeMap<String, JournalCursor>,
    /// The last status of each input's journalctl.
    statuses: BTreeMap<String, JournalStatus>,
    options: ReaderOptions,
}

impl Journals {
    /// Starts a reader for every journald input of `config`, each just after its `stored`
    /// cursor (or from its `start_at`). Must be called inside the runtime.
    pub(crate) fn start(config: &Config, stored: BTreeMap<String, JournalCursor>) -> Journals {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let mut journals = Journals {
            readers: BTreeMap::new(),
            sender,
            receiver,
            positions: BTreeMap::new(),
            saved: stored.clone(),
            statuses: BTreeMap::new(),
            options: ReaderOptions::standard(),
        };
        journals.positions = stored;
        journals.apply(config);
        journals
    }

    /// The next event of any reader (never, while there is no journald input).
    pub(crate) async fn recv(&mut self) -> Option<JournalEvent> {
        self.receiver.recv().await
    }

    /// Follows the journald inputs of `config` (a reload): new ones start, removed ones stop,
    /// changed ones restart after their last handled cursor, unchanged ones go on.
    pub(crate) fn apply(&mut self, config: &Config) {
        let wanted: BTreeMap<&String, &InputConfig> = config
            .inputs
            .iter()
            .filter(|(_, input)| input.journald.is_some())
            .collect();
        // Dropping a reader kills its journalctl.
        self.readers.retain(|name, running| {
            wanted
                .get(name)
                .is_some_and(|input| Settings::of(input).as_ref() == Some(&running.settings))
        });
        self.positions.retain(|name, _| wanted.contains_key(name));
        self.statuses.retain(|name, _| wanted.contains_key(name));
        for (name, input) in wanted {
            if self.readers.contains_key(name) {
                continue;
            }
            let (Some(mut journal), Some(settings)) =
                (JournalInput::from_config(input), Settings::of(input))
            else {
                continue;
            };
            let position = self.positions.get(name).cloned();
            let cursor = position.as_ref().and_then(|p| p.cursor.clone());
            // A position without a cursor is from an earlier run (or reader) that read nothing
            // yet: read from when it started. A new input starts at its `start_at`.
            journal.since = position.as_ref().map(|p| p.since);
            self.positions.entry(name.clone()).or_insert(JournalCursor {
                cursor: None,
                since: SystemTime::now(),
            });
            let name_arc = journal.name.clone();
            let reader =
                JournalReader::spawn(journal, cursor, self.options.clone(), self.sender.clone());
            self.readers.insert(
                name.clone(),
                Running {
                    name: name_arc,
                    settings,
                    reader,
                },
            );
        }
    }

    /// Stops every reader (shutdown): their journalctl are killed; entries not handled yet are
    /// read again after the next start.
    pub(crate) fn stop(&mut self) {
        self.readers.clear();
    }

    /// True when `input` is the name of a running reader (not of one a reload replaced).
    fn is_current(&self, input: &Arc<str>) -> bool {
        self.readers
            .get(&**input)
            .is_some_and(|running| Arc::ptr_eq(&running.name, input))
    }

    /// The positions to store, when they differ from what the store holds.
    pub(crate) fn unsaved(&self) -> Option<BTreeMap<String, JournalCursor>> {
        (self.positions != self.saved).then(|| self.positions.clone())
    }

    /// `positions` are stored now.
    pub(crate) fn saved(&mut self, positions: BTreeMap<String, JournalCursor>) {
        self.saved = positions;
    }

    /// What is wrong with the journald inputs now (journalctl missing or exited), one line.
    pub(crate) fn problem(&self) -> Option<String> {
        let problems: Vec<String> = self
            .statuses
            .iter()
            .filter_map(|(input, status)| match status {
                JournalStatus::Missing { error, .. } => Some(format!("input `{input}`: {error}")),
                JournalStatus::Exited { reason, .. } => Some(format!("input `{input}`: {reason}")),
                JournalStatus::Starting | JournalStatus::Running { .. } => None,
            })
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

impl Daemon {
    /// Handles one event of a journal reader: entries are matched like lines (their last
    /// cursor committed with their matches), statuses reported, skipped output counted.
    pub(crate) fn on_journal(&mut self, event: JournalEvent) {
        match event {
            JournalEvent::Entries { input, entries } => {
                if !self.journals.is_current(&input) {
                    return;
                }
                let Some(config) = self.pipeline.config.inputs.get(&*input) else {
                    return;
                };
                let Some(last) = entries.last().map(|entry| entry.cursor.clone()) else {
                    return;
                };
                let now = SystemTime::now();
                let lines = entries
                    .into_iter()
                    .map(|entry| entry.into_line(config, now))
                    .collect();
                if let Some(position) = self.journals.positions.get_mut(&*input) {
                    position.cursor = Some(last);
                }
                // The files' checkpoints do not move; the commit carries the cursor with the
                // entries' matches.
                let checkpoints = self.latest_checkpoints.clone();
                self.on_lines(lines, checkpoints);
            }
            JournalEvent::Skipped { input, n_lines, .. } => {
                self.metrics
                    .journal_skipped
                    .get_or_create(&InputLabel {
                        input: input.to_string(),
                    })
                    .inc_by(n_lines);
            }
            JournalEvent::Status { input, status } => {
                if !self.journals.is_current(&input) {
                    return;
                }
                let label = InputLabel {
                    input: input.to_string(),
                };
                self.metrics
                    .journal_running
                    .get_or_create(&label)
                    .set(i64::from(status.is_running()));
                if status.retry_in().is_some() {
                    self.metrics.journal_restarts.get_or_create(&label).inc();
                }
                self.journals.statuses.insert(input.to_string(), status);
                self.health.set_problem(HEALTH, self.journals.problem());
            }
        }
    }

    /// Follows the journald inputs of the running pipeline (after a reload).
    pub(crate) fn apply_journals(&mut self) {
        let pipeline = self.pipeline.clone();
        self.journals.apply(&pipeline.config);
        self.health.set_problem(HEALTH, self.journals.problem());
        // A removed input's row goes, a new one's start time is kept.
        if self.journals.unsaved().is_some() {
            self.commit(None);
        }
    }
}
