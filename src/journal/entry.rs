//! One line of `journalctl --output=json` turned into a [`JournalEntry`]: the entry's cursor
//! (its checkpoint) and a [`Record`] whose text is `MESSAGE` and whose context is every other
//! field under its journal name.
//!
//! journalctl's JSON (systemd `JOURNAL_EXPORT_FORMATS.md`): every value is a string, except a
//! value that is not valid UTF-8 or not printable, which is an array of byte numbers; a field
//! that occurs several times in the entry, which is an array of its values (each a string or a
//! byte array); and, without `--all`, a value over 4096 bytes, which is `null`. `__CURSOR` is
//! opaque and kept as it is. The event time is `_SOURCE_REALTIME_TIMESTAMP` (when the sender
//! said it) else `__REALTIME_TIMESTAMP` (when journald received it), both microseconds since the
//! epoch in a string. Byte values are decoded with the input's `encoding` (a GBK service logging
//! to the journal gets byte arrays), else as UTF-8 with U+FFFD for bad bytes.
//!
//! Pure: bytes in, values out. `--show-cursor` makes journalctl end with `-- cursor: C`, which
//! is recognised and returned as [`JournalLine::Trailer`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::config::{Content, Decoding, Format, InputConfig};
use crate::event::{FileId, LogLine};
use crate::fields::Context;
use crate::intake::decode::{Record, decode_text, json};
use crate::intake::timestamp::event_time;

/// The `path` (and `file` in templates) of every journal event.
pub const JOURNAL_PATH: &str = "journal";

/// The fields that are not context: the message is the record's text, the cursor its
/// checkpoint.
const MESSAGE: &str = "MESSAGE";
const CURSOR: &str = "__CURSOR";
const SOURCE_TIME: &str = "_SOURCE_REALTIME_TIMESTAMP";
const RECEIVED_TIME: &str = "__REALTIME_TIMESTAMP";
const HOSTNAME: &str = "_HOSTNAME";

/// One journal entry.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalEntry {
    /// `__CURSOR`: where to resume after this entry (`--after-cursor`). Opaque.
    pub cursor: String,
    /// The entry as a record: `MESSAGE` is the text; the other fields (but `__CURSOR`) are
    /// context; `start` and `end` are 0.
    pub record: Record,
}

impl JournalEntry {
    /// `_HOSTNAME`: the host the entry comes from.
    pub fn host(&self) -> Option<&str> {
        self.record.context.get(HOSTNAME)
    }

    /// The entry as an event of `input` read at `read_at`: `MESSAGE` is the text, every other
    /// field the context (`_HOSTNAME` is its host, `LogLine::host`); the event time is the one
    /// the input's `timestamp:` reads in the message, else the entry's own. It has no file: its
    /// path is [`JOURNAL_PATH`], its offsets 0 (its checkpoint is the cursor).
    pub fn into_line(self, input: &InputConfig, read_at: SystemTime) -> LogLine {
        let record = self.record;
        let stamped = input
            .timestamp
            .as_ref()
            .and_then(|timestamp| event_time(timestamp, &record.text, read_at));
        LogLine {
            input: input.name.as_str().into(),
            file_id: FileId(0),
            path: Path::new(JOURNAL_PATH).into(),
            start_offset: 0,
            end_offset: 0,
            text: record.text,
            truncated: record.truncated,
            invalid: record.invalid,
            read_at,
            event_time: stamped.or(record.time),
            context: record.context,
            fields: record.fields,
        }
    }
}

/// What one line of journalctl's output is.
#[derive(Clone, Debug, PartialEq)]
pub enum JournalLine {
    /// An entry.
    Entry(JournalEntry),
    /// `-- cursor: C`, written by `--show-cursor` when journalctl ends.
    Trailer(String),
}

/// Why a line is not an entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// The line is not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// The entry has no `__CURSOR` string, so it cannot be a checkpoint.
    #[error("the entry has no __CURSOR")]
    NoCursor,
}

/// Turns journalctl's JSON lines into entries, as an input's decoding says.
#[derive(Clone, Debug)]
pub struct EntryDecoder {
    encoding: Option<&'static encoding_rs::Encoding>,
    /// `format: json` or `content: json`: `MESSAGE` holds a JSON object.
    message_json: bool,
    message_field: Option<String>,
    max_message_bytes: usize,
}

impl EntryDecoder {
    /// A decoder for an input with `decoding`, whose messages are cut at `max_line_bytes`.
    pub fn new(decoding: &Decoding, max_line_bytes: usize) -> EntryDecoder {
        EntryDecoder {
            encoding: decoding.encoding,
            message_json: decoding.format == Format::Json || decoding.content == Content::Json,
            message_field: decoding.message_field.clone(),
            max_message_bytes: max_line_bytes.max(1),
        }
    }

    /// Decodes one line of output (without its `\n`).
    ///
    /// # Errors
    /// The line is neither a JSON object nor the cursor trailer, or the entry has no cursor.
    pub fn decode(&self, line: &[u8]) -> Result<JournalLine, EntryError> {
        if let Some(cursor) = line.strip_prefix(b"-- cursor: ") {
            return Ok(JournalLine::Trailer(
                String::from_utf8_lossy(cursor).trim().to_string(),
            ));
        }
        let map: Map<String, Value> =
            serde_json::from_slice(line).map_err(|err| EntryError::NotJson(err.to_string()))?;
        let cursor = match map.get(CURSOR) {
            Some(Value::String(cursor)) => cursor.clone(),
            _ => return Err(EntryError::NoCursor),
        };
        let time = [SOURCE_TIME, RECEIVED_TIME].iter().find_map(|name| {
            let micros: u64 = self.texts(map.get(*name)?).first()?.trim().parse().ok()?;
            UNIX_EPOCH.checked_add(Duration::from_micros(micros))
        });
        let mut pairs = Vec::with_capacity(map.len());
        let mut message: Option<Vec<String>> = None;
        for (name, value) in &map {
            match name.as_str() {
                CURSOR => {}
                MESSAGE => message = Some(self.texts(value)),
                _ => {
                    let name: Arc<str> = Arc::from(name.as_str());
                    for text in self.texts(value) {
                        pairs.push((name.clone(), Arc::from(text)));
                    }
                }
            }
        }
        let context = Context::from_pairs(pairs);
        // `null` (over 4096 bytes without `--all`) gives no text: flagged as cut.
        let (text, mut truncated) = match message {
            Some(texts) if !texts.is_empty() => (texts.join("\n"), false),
            Some(_) => (String::new(), true),
            None => (String::new(), false),
        };
        let text = if text.len() > self.max_message_bytes {
            truncated = true;
            let mut cut = self.max_message_bytes;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.get(..cut).unwrap_or_default().to_string()
        } else {
            text
        };
        let mut record = Record {
            start: 0,
            end: 0,
            text,
            truncated,
            invalid: false,
            time,
            context,
            fields: None,
        };
        if self.message_json {
            match json::decode(record.text.as_bytes(), self.message_field.as_deref()) {
                Some(line) => {
                    record.text = line.text;
                    record.fields = Some(Box::new(line.fields));
                }
                None => record.invalid = !record.truncated,
            }
        }
        Ok(JournalLine::Entry(JournalEntry { cursor, record }))
    }

    /// The texts of a field's value: one for a string or a byte array, one per occurrence of a
    /// repeated field, none for `null`.
    fn texts(&self, value: &Value) -> Vec<String> {
        match value {
            Value::Array(items) if items.iter().all(|item| !item.is_number()) => {
                items.iter().filter_map(|item| self.text(item)).collect()
            }
            other => self.text(other).into_iter().collect(),
        }
    }

    /// The text of one value: a string, or a byte array decoded.
    fn text(&self, value: &Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            Value::Array(items) => {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|item| {
                        item.as_u64()
                            .and_then(|n| u8::try_from(n).ok())
                            .unwrap_or(b'?')
                    })
                    .collect();
                Some(decode_text(&bytes, self.encoding))
            }
            other => Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use crate::config::{Content, Decoding, FieldCondition};
    use crate::fields::Where;
    use crate::journal::entry::{EntryDecoder, EntryError, JournalEntry, JournalLine};

    fn entry(decoder: &EntryDecoder, line: &str) -> JournalEntry {
        match decoder.decode(line.as_bytes()) {
            Ok(JournalLine::Entry(entry)) => entry,
            other => panic!("not an entry: {other:?}"),
        }
    }

    fn plain() -> EntryDecoder {
        EntryDecoder::new(&Decoding::default(), 65_536)
    }

    /// A line as journalctl 252 wrote it for an sshd failure.
    const SSHD: &str = r#"{"__CURSOR":"s=1f69;i=1;b=0;m=0;t=60a24181e4000;x=da91","__REALTIME_TIMESTAMP":"1700000000000000","__MONOTONIC_TIMESTAMP":"0","_BOOT_ID":"00000000000000000000000000000000","PRIORITY":"3","SYSLOG_IDENTIFIER":"sshd","_PID":"42","_HOSTNAME":"web-1","_SYSTEMD_UNIT":"ssh.service","_SOURCE_REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"Failed password for root from 203.0.113.9 port 52144 ssh2"}"#;

    #[test]
    fn an_entry_gives_its_message_cursor_time_host_and_fields_as_context() {
        let entry = entry(&plain(), SSHD);
        assert_eq!(entry.cursor, "s=1f69;i=1;b=0;m=0;t=60a24181e4000;x=da91");
        assert_eq!(
            entry.record.text,
            "Failed password for root from 203.0.113.9 port 52144 ssh2"
        );
        assert_eq!(
            entry.record.time,
            Some(UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456)),
            "the sender's time wins over the receiver's"
        );
        assert_eq!(entry.host(), Some("web-1"));
        let context = &entry.record.context;
        assert_eq!(context.get("PRIORITY"), Some("3"));
        assert_eq!(context.get("_SYSTEMD_UNIT"), Some("ssh.service"));
        assert_eq!(context.get("MESSAGE"), None, "the message is the text");
        assert_eq!(context.get("__CURSOR"), None);
        assert_eq!(context.len(), 9);
        let condition = |field: &str, values: &[&str]| FieldCondition {
            field: field.into(),
            values: values.iter().map(|v| (*v).to_string()).collect(),
        };
        let rule = Where::new(&[
            condition("SYSLOG_IDENTIFIER", &["sshd"]),
            condition("PRIORITY", &["0", "1", "2", "3"]),
        ]);
        assert!(rule.matches(&entry.record.context, None));
        assert!(!Where::new(&[condition("PRIORITY", &["6"])]).matches(&entry.record.context, None));
    }

    #[test]
    fn byte_arrays_repeated_fields_and_nulls() {
        // MESSAGE is GBK "订单失败" as bytes; FOO is repeated; BIG was over 4096 bytes.
        let line = r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1700000001000000","MESSAGE":[182,169,181,165,202,167,176,220],"FOO":["a",[98,255],null],"BIG":null,"BIN":[104,105,10]}"#;
        let utf8 = entry(&plain(), line);
        assert_eq!(
            utf8.record.text,
            String::from_utf8_lossy(&[182, 169, 181, 165, 202, 167, 176, 220]),
            "without an encoding, bytes are UTF-8 with U+FFFD for bad ones"
        );
        assert_eq!(
            utf8.record.time,
            Some(UNIX_EPOCH + Duration::from_micros(1_700_000_001_000_000))
        );
        let context: Vec<(&str, &str)> = utf8.record.context.iter().collect();
        assert_eq!(
            context,
            [
                ("BIN", "hi\n"),
                ("FOO", "a"),
                ("FOO", "b\u{fffd}"),
                ("__REALTIME_TIMESTAMP", "1700000001000000")
            ],
            "null values are left out; repeated fields appear once per value"
        );
        let gbk = EntryDecoder::new(
            &Decoding {
                encoding: encoding_rs::Encoding::for_label(b"gbk"),
                ..Decoding::default()
            },
            65_536,
        );
        assert_eq!(entry(&gbk, line).record.text, "订单失败");
        // A null MESSAGE (journalctl without --all) is empty and flagged as cut.
        let cut = entry(&plain(), r#"{"__CURSOR":"c","MESSAGE":null}"#);
        assert_eq!((cut.record.text.as_str(), cut.record.truncated), ("", true));
        assert_eq!(cut.record.time, None);
        // A repeated MESSAGE keeps every value.
        let twice = entry(&plain(), r#"{"__CURSOR":"c","MESSAGE":["one","two"]}"#);
        assert_eq!(twice.record.text, "one\ntwo");
    }

    #[test]
    fn long_messages_are_cut_and_json_messages_decoded() {
        let short = EntryDecoder::new(&Decoding::default(), 5);
        let cut = entry(&short, r#"{"__CURSOR":"c","MESSAGE":"订单失败"}"#);
        assert_eq!(
            (cut.record.text.as_str(), cut.record.truncated),
            ("订", true)
        );
        let json = EntryDecoder::new(
            &Decoding {
                content: Content::Json,
                ..Decoding::default()
            },
            65_536,
        );
        let decoded = entry(
            &json,
            r#"{"__CURSOR":"c","MESSAGE":"{\"level\":\"error\",\"msg\":\"db down\",\"code\":500}"}"#,
        );
        assert_eq!(decoded.record.text, "db down");
        assert_eq!(
            decoded.record.fields.as_ref().unwrap().get("code"),
            Some(json!(500))
        );
        let plain_text = entry(
            &json,
            r#"{"__CURSOR":"c","MESSAGE":"Started nginx.service."}"#,
        );
        assert_eq!(plain_text.record.text, "Started nginx.service.");
        assert!(plain_text.record.invalid);
    }

    #[test]
    fn trailers_and_broken_lines() {
        assert_eq!(
            plain().decode(b"-- cursor: s=1f69;i=2;b=0"),
            Ok(JournalLine::Trailer("s=1f69;i=2;b=0".into()))
        );
        assert_eq!(
            plain().decode(br#"{"MESSAGE":"x"}"#),
            Err(EntryError::NoCursor)
        );
        assert!(matches!(
            plain().decode(b"-- No entries --"),
            Err(EntryError::NotJson(_))
        ));
        assert!(matches!(
            plain().decode(br#"{"__CURSOR":"c","MESSAGE":"x""#),
            Err(EntryError::NotJson(_))
        ));
    }
}
