//! Docker's json-file log line (moby `jsonlog`): `{"log":"…","stream":"stdout|stderr",
//! "time":"<RFC 3339>"}`, plus `"attrs":{…}` when the container has label or env log options.
//!
//! Docker splits a message longer than 16 KiB into several lines; every line but the last lacks
//! the `\n` that ends `log` (the rule Fluent Bit applies; a final write without a newline looks
//! the same, and `partial_timeout` hands it out). All three keys are required, so that an
//! application's own JSON that happens to hold a `log` field is not taken for docker's.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::intake::decode::Stream;
use crate::intake::decode::stamp;

/// One parsed docker line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerLine<'a> {
    /// The chunk of output, trailing `\n` included when docker wrote one.
    pub log: Cow<'a, str>,
    /// Which of the container's outputs it came from.
    pub stream: Stream,
    /// Docker's time for the chunk.
    pub time: SystemTime,
    /// `attrs` (labels and env values chosen by log options), string values only.
    pub attrs: Vec<(String, String)>,
}

impl DockerLine<'_> {
    /// True when the message continues in the next line of the same stream.
    pub fn partial(&self) -> bool {
        !self.log.ends_with('\n')
    }
}

/// The line as docker writes it.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(default)]
    attrs: Option<Map<String, Value>>,
}

/// Parses `line` (without its `\n`); `None` when it is not a docker line.
pub fn parse(line: &[u8]) -> Option<DockerLine<'_>> {
    if line.first() != Some(&b'{') {
        return None;
    }
    let wire: Wire<'_> = serde_json::from_slice(line).ok()?;
    let stream = match &*wire.stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let time = stamp::parse(wire.time.as_bytes())?;
    let attrs = wire
        .attrs
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name, text)),
            _ => None,
        })
        .collect();
    Some(DockerLine {
        log: wire.log,
        stream,
        time,
        attrs,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::intake::decode::Stream;
    use crate::intake::decode::docker::parse;

    #[test]
    fn docker_lines_parse_with_escapes_and_attrs() {
        let line = parse(
            br#"{"log":"GET /x \"q\" \u4f60\u597d\n","stream":"stdout","time":"2026-11-24T12:00:00.000000123Z"}"#,
        )
        .unwrap();
        assert_eq!(line.log, "GET /x \"q\" 你好\n");
        assert_eq!(line.stream, Stream::Stdout);
        assert_eq!(line.time, UNIX_EPOCH + Duration::new(1_795_521_600, 123));
        assert!(!line.partial());
        let line = parse(
            br#"{"log":"part","stream":"stderr","attrs":{"tag":"web","n":1},"time":"2026-11-24T12:00:00Z"}"#,
        )
        .unwrap();
        assert!(line.partial());
        assert_eq!(line.stream, Stream::Stderr);
        assert_eq!(line.attrs, [("tag".to_string(), "web".to_string())]);
    }

    #[test]
    fn other_json_is_not_docker() {
        for line in [
            &br#"{"log":"x\n"}"#[..],
            br#"{"log":"x\n","stream":"stdin","time":"2026-11-24T12:00:00Z"}"#,
            br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
            br#"{"log":1,"stream":"stdout","time":"2026-11-24T12:00:00Z"}"#,
            br#"{"log":"x\n","stream":"stdout","time":"2026-11-24T12:00:00Z""#,
            br#"["log"]"#,
            b"plain text",
            b"",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
