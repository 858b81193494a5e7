//! The CRI log line, as containerd and CRI-O write a container's output under `/var/log/pods`
//! (kubelet's `parseCRILog`): `TIMESTAMP SP (stdout|stderr) SP TAGS SP CONTENT`.
//!
//! TIMESTAMP is RFC 3339 with 0–9 fraction digits and `Z` or `±hh:mm`; TAGS is `:`-separated and
//! only its first tag counts: `P` (a piece of a longer line; the runtime split it at 16 KiB) or
//! `F` (the last or only piece). The parser works on bytes, borrows the content and allocates
//! nothing: the content may be in any ASCII-compatible encoding, and it is decoded only after the
//! pieces of a line are joined, so that a character cut between two pieces survives.

use std::time::SystemTime;

use crate::intake::decode::Stream;
use crate::intake::decode::stamp;

/// One parsed CRI line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The runtime's time for the line.
    pub time: SystemTime,
    /// Which of the container's outputs the line came from.
    pub stream: Stream,
    /// True for a `P` piece: the line continues in the next piece of the same stream.
    pub partial: bool,
    /// The content, without the line's terminator.
    pub content: &'a [u8],
}

/// Parses `line` (without its `\n`); `None` when it is not a CRI line (no valid timestamp, no
/// stream, or a first tag other than `P` and `F`).
pub fn parse(line: &[u8]) -> Option<CriLine<'_>> {
    let space = memchr::memchr(b' ', line)?;
    let (stamp, rest) = (line.get(..space)?, line.get(space + 1..)?);
    let (stream, rest) = if let Some(rest) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, rest)
    } else if let Some(rest) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, rest)
    } else {
        return None;
    };
    // Content may be empty; a runtime writes `F ` then nothing, but be lenient about the space.
    let (tags, content) = match memchr::memchr(b' ', rest) {
        Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
        None => (rest, &[][..]),
    };
    let first_tag = tags.split(|b| *b == b':').next()?;
    let partial = match first_tag {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let time = stamp::parse(stamp)?;
    Some(CriLine {
        time,
        stream,
        partial,
        content,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::intake::decode::Stream;
    use crate::intake::decode::cri::{CriLine, parse};

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn real_lines_parse() {
        assert_eq!(
            parse(b"2026-11-24T12:00:00.123456789Z stdout F GET /healthz 200"),
            Some(CriLine {
                time: at(1_795_521_600, 123_456_789),
                stream: Stream::Stdout,
                partial: false,
                content: b"GET /healthz 200",
            })
        );
        // CRI-O writes an offset; no fraction at all is fine too.
        let line = parse(b"2026-11-24T20:00:00+08:00 stderr P first half").unwrap();
        assert_eq!(
            (line.time, line.stream, line.partial, line.content),
            (
                at(1_795_521_600, 0),
                Stream::Stderr,
                true,
                &b"first half"[..]
            )
        );
        // Trailing zeros dropped (Go's .999999999), several tags, empty content.
        let line = parse(b"2026-11-24T12:00:00.5Z stdout F:x ").unwrap();
        assert_eq!(
            (line.time, line.content),
            (at(1_795_521_600, 500_000_000), &b""[..])
        );
        assert_eq!(
            parse(b"2026-11-24T12:00:00Z stdout F").unwrap().content,
            b""
        );
        // Content keeps its spaces and any bytes.
        assert_eq!(
            parse(b"2026-11-24T12:00:00Z stdout F  two  spaces \xff")
                .unwrap()
                .content,
            b" two  spaces \xff"
        );
    }

    #[test]
    fn anything_else_is_not_cri() {
        for line in [
            &b""[..],
            b"hello world",
            b"2026-11-24 12:00:00 stdout F x",
            b"2026-11-24T12:00:00Z stdin F x",
            b"2026-11-24T12:00:00Z stdout X x",
            b"2026-11-24T12:00:00Z stdout  x",
            b"2026-11-24T25:00:00Z stdout F x",
            b"2026-11-24T12:00:00 stdout F missing offset",
            b"2026-11-24T12:00:00.1234567890Z stdout F ten digits",
            b"{\"log\":\"x\"}",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
