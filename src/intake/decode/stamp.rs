//! Event times of container lines: RFC 3339 timestamps (`2026-11-24T12:00:00.123456789Z`, 0–9
//! fraction digits, `Z` or `±hh:mm`) as Go's `time.RFC3339Nano` writes them, parsed by jiff's
//! Temporal parser (a superset of RFC 3339 that always requires the offset).

use std::time::SystemTime;

use jiff::fmt::temporal::DateTimeParser;

/// One parser for every call: it holds only options.
static PARSER: DateTimeParser = DateTimeParser::new();

/// The instant `stamp` names, or `None` when it is not a timestamp with an offset (or is outside
/// what `SystemTime` holds).
pub fn parse(stamp: &[u8]) -> Option<SystemTime> {
    // A cheap shape check first: most text that is not a timestamp fails here without the
    // parser building an error value.
    let [y0, y1, y2, y3, b'-', ..] = stamp else {
        return None;
    };
    if ![y0, y1, y2, y3].iter().all(|b| b.is_ascii_digit()) || stamp.len() < 20 {
        return None;
    }
    let timestamp = PARSER.parse_timestamp(stamp).ok()?;
    SystemTime::try_from(timestamp).ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::intake::decode::stamp::parse;

    #[test]
    fn rfc3339_nano_with_any_fraction_and_offset() {
        let base = UNIX_EPOCH + Duration::from_secs(1_795_521_600);
        assert_eq!(parse(b"2026-11-24T12:00:00Z"), Some(base));
        assert_eq!(
            parse(b"2026-11-24T12:00:00.000000001Z"),
            Some(base + Duration::from_nanos(1))
        );
        assert_eq!(
            parse(b"2026-11-24T12:00:00.12Z"),
            Some(base + Duration::from_millis(120))
        );
        assert_eq!(parse(b"2026-11-24T20:00:00+08:00"), Some(base));
        assert_eq!(parse(b"2026-11-24T06:30:00.0-05:30"), Some(base));
        assert_eq!(
            parse(b"1969-12-31T23:59:59Z"),
            Some(UNIX_EPOCH - Duration::from_secs(1))
        );
    }

    #[test]
    fn no_offset_or_no_timestamp_is_none() {
        for stamp in [
            &b""[..],
            b"2026-11-24",
            b"2026-11-24T12:00:00",
            b"2026-13-24T12:00:00Z",
            b"2026-02-30T12:00:00Z",
            b"2026-11-24T12:00:60.1234567890Z",
            b"yesterday at noon, UTC",
            b"\xff\xfe2026-11-24T12:00:00Z",
        ] {
            assert_eq!(parse(stamp), None, "{}", String::from_utf8_lossy(stamp));
        }
    }
}
