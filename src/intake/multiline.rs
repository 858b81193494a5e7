//! `Joiner`: joins continuation lines (a stack trace's `at …` lines) onto the line that started
//! the event, so that a rule sees one event. One joiner per followed file.
//!
//! Pure: it never reads the clock. The caller passes `now` with every line and calls
//! [`Joiner::poll`] when [`Joiner::deadline`] passes, so an event that ends a burst is closed
//! after `timeout` of quiet instead of waiting for the next start line.
//!
//! Rules: a line matching `start` closes the open event and opens a new one. Any other line
//! continues the open event; with no open event it opens one (so nothing is ever dropped). An
//! event is closed when it reaches `max_lines`. The joined text holds the lines separated by `\n`.

use std::time::Instant;

use regex::Regex;

use crate::config::MultilineConfig;
use crate::event::LogLine;

/// Joins the lines of one file into multi-line events.
#[derive(Debug)]
pub struct Joiner {
    start: Regex,
    max_lines: usize,
    timeout: std::time::Duration,
    open: Option<OpenEvent>,
}

#[derive(Debug)]
struct OpenEvent {
    event: LogLine,
    n_lines: usize,
    last_line_at: Instant,
}

impl Joiner {
    /// A joiner following `config`.
    pub fn new(config: &MultilineConfig) -> Joiner {
        Joiner {
            start: config.start.clone(),
            max_lines: config.max_lines.max(1),
            timeout: config.timeout,
            open: None,
        }
    }

    /// Feeds one line read at `now`; returns the event this line closed, if any. At most one
    /// event is returned because a line closes at most the event before it; an event that reaches
    /// `max_lines` is returned by the call that completes it, and the next call cannot also close
    /// one.
    pub fn push(&mut self, line: LogLine, now: Instant) -> Option<LogLine> {
        let starts = self.start.is_match(&line.text);
        match self.open.take() {
            Some(open) if starts => {
                self.open = Some(OpenEvent {
                    event: line,
                    n_lines: 1,
                    last_line_at: now,
                });
                self.close_if_full();
                Some(open.event)
            }
            Some(mut open) => {
                open.event.text.push('\n');
                open.event.text.push_str(&line.text);
                open.event.end_offset = line.end_offset;
                open.event.truncated |= line.truncated;
                open.event.invalid |= line.invalid;
                open.event.read_at = line.read_at;
                open.n_lines += 1;
                open.last_line_at = now;
                self.open = Some(open);
                self.close_if_full()
            }
            None => {
                self.open = Some(OpenEvent {
                    event: line,
                    n_lines: 1,
                    last_line_at: now,
                });
                self.close_if_full()
            }
        }
    }

    fn close_if_full(&mut self) -> Option<LogLine> {
        match &self.open {
            Some(open) if open.n_lines >= self.max_lines => self.open.take().map(|open| open.event),
            _ => None,
        }
    }

    /// Closes the open event if it has been quiet for `timeout` at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<LogLine> {
        match &self.open {
            Some(open) if now.saturating_duration_since(open.last_line_at) >= self.timeout => {
                self.open.take().map(|open| open.event)
            }
            _ => None,
        }
    }

    /// Closes the open event whatever its age (the file is released, or the daemon stops).
    pub fn flush(&mut self) -> Option<LogLine> {
        self.open.take().map(|open| open.event)
    }

    /// When the open event times out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.open
            .as_ref()
            .map(|open| open.last_line_at + self.timeout)
    }

    /// The start offset of the open event: a checkpoint of this file must not pass it, or the
    /// lines already joined would be lost by a crash.
    pub fn open_start(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.event.start_offset)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, Instant, SystemTime};

    use crate::config::MultilineConfig;
    use crate::event::{FileId, LogLine};
    use crate::intake::multiline::Joiner;

    fn joiner(max_lines: usize) -> Joiner {
        Joiner::new(&MultilineConfig {
            start: regex::Regex::new(r"^\d{4}-").unwrap(),
            max_lines,
            timeout: Duration::from_secs(2),
        })
    }

    /// Feeds `lines` one second apart and returns the texts of the events, flushing at the end.
    fn check(joiner: &mut Joiner, lines: &[&str]) -> Vec<(String, u64, u64)> {
        let t0 = Instant::now();
        let mut offset = 0u64;
        let mut out = Vec::new();
        for (i, text) in lines.iter().enumerate() {
            let line = LogLine {
                input: "app".into(),
                file_id: FileId(1),
                path: PathBuf::from("/x.log").into(),
                start_offset: offset,
                end_offset: offset + text.len() as u64 + 1,
                text: (*text).to_string(),
                truncated: false,
                invalid: false,
                read_at: SystemTime::now(),
                event_time: None,
                context: crate::fields::Context::new(),
                fields: None,
            };
            offset = line.end_offset;
            out.extend(joiner.push(line, t0 + Duration::from_millis(100 * i as u64)));
        }
        out.extend(joiner.flush());
        out.into_iter()
            .map(|e| (e.text, e.start_offset, e.end_offset))
            .collect()
    }

    #[test]
    fn joins_stack_traces_onto_their_start_line() {
        let events = check(
            &mut joiner(500),
            &[
                "2024-01-01 ERROR boom",
                "java.lang.X: y",
                "\tat a.b(C.java:1)",
                "2024-01-01 INFO ok",
            ],
        );
        assert_eq!(
            events,
            vec![
                (
                    "2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)".to_string(),
                    0,
                    55
                ),
                ("2024-01-01 INFO ok".to_string(), 55, 74),
            ]
        );
    }

    #[test]
    fn orphan_continuations_are_kept_and_max_lines_closes() {
        let events = check(
            &mut joiner(2),
            &["  at x", "  at y", "  at z", "2024-01-01 a"],
        );
        let texts: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(texts, ["  at x\n  at y", "  at z", "2024-01-01 a"]);
    }

    #[test]
    fn quiet_closes_the_open_event_and_tracks_its_start() {
        let mut joiner = joiner(500);
        let t0 = Instant::now();
        let line = |text: &str, start: u64| LogLine {
            input: "app".into(),
            file_id: FileId(1),
            path: PathBuf::from("/x.log").into(),
            start_offset: start,
            end_offset: start + 10,
            text: text.into(),
            truncated: false,
            invalid: false,
            read_at: SystemTime::now(),
            event_time: None,
            context: crate::fields::Context::new(),
            fields: None,
        };
        assert!(joiner.push(line("2024-01-01 a", 40), t0).is_none());
        assert_eq!(joiner.open_start(), Some(40));
        assert_eq!(joiner.deadline(), Some(t0 + Duration::from_secs(2)));
        assert!(joiner.poll(t0 + Duration::from_millis(1999)).is_none());
        let event = joiner.poll(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(event.text, "2024-01-01 a");
        assert_eq!(joiner.open_start(), None);
        assert_eq!(joiner.deadline(), None);
    }
}
