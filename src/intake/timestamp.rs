//! Event times: when a line says it happened, read with its input's `timestamp:` (a regex whose
//! one capture group is the time, and how that text reads). The daemon's tailer, `dingtail test`
//! and `dingtail tail` read through the same `EventReader`, which stamps every event with
//! [`event_time`], so a replayed log reports the times it happened.
//!
//! Formats without an offset are read in the input's zone; formats without a year (syslog's
//! `Dec 10 06:55:46`) take the year that puts the time nearest to `now` (a log read on 2 January
//! that says `Dec 31 23:59:59` is from last year). A time that cannot be read gives `None`, and
//! the event keeps its read time (the daemon counts these per input).
//!
//! Pure: `now` comes from the caller.

use std::time::SystemTime;

use jiff::Timestamp;
use jiff::fmt::strtime::BrokenDownTime;
use jiff::tz::TimeZone;

use crate::config::{TimeFormat, TimestampConfig};

/// When the event in `text` happened, by `config`; `None` when the line holds no time that
/// reads (no match, an impossible date, a value out of range).
pub fn event_time(config: &TimestampConfig, text: &str, now: SystemTime) -> Option<SystemTime> {
    let captures = config.pattern.captures(text)?;
    let time = captures.get(1)?.as_str().trim();
    let timestamp = match &config.format {
        TimeFormat::Rfc3339 => time.parse::<Timestamp>().ok()?,
        TimeFormat::Unix => unix_seconds(time)?,
        TimeFormat::UnixMs => Timestamp::from_millisecond(time.parse().ok()?).ok()?,
        TimeFormat::Strftime(format) => strftime(format, time, &config.zone, now)?,
    };
    SystemTime::try_from(timestamp).ok()
}

/// `1764057662` or `1764057662.345`.
fn unix_seconds(text: &str) -> Option<Timestamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = whole.parse().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let nanos: i32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let nanos = if seconds < 0 { -nanos } else { nanos };
    Timestamp::new(seconds, nanos).ok()
}

/// `text` read with strftime `format`; an offset in the text wins over `zone`; a missing year
/// is the one nearest to `now`.
fn strftime(format: &str, text: &str, zone: &TimeZone, now: SystemTime) -> Option<Timestamp> {
    let parsed = BrokenDownTime::parse(format, text).ok()?;
    if parsed.offset().is_some() && parsed.year().is_some() {
        return parsed.to_timestamp().ok();
    }
    if parsed.year().is_some() {
        return zone.to_timestamp(parsed.to_datetime().ok()?).ok();
    }
    let now = Timestamp::try_from(now).ok()?;
    let this_year = zone.to_datetime(now).year();
    [this_year - 1, this_year, this_year + 1]
        .into_iter()
        .filter_map(|year| {
            // (A parse is cheap, and `BrokenDownTime` is not `Clone`.)
            let mut dated = BrokenDownTime::parse(format, text).ok()?;
            dated.set_year(Some(year)).ok()?;
            match dated.offset() {
                Some(_) => dated.to_timestamp().ok(),
                None => zone.to_timestamp(dated.to_datetime().ok()?).ok(),
            }
        })
        .min_by_key(|at| at.duration_since(now).abs())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jiff::tz::TimeZone;

    use crate::config::{TimeFormat, TimestampConfig};
    use crate::intake::timestamp::event_time;

    fn config(pattern: &str, format: TimeFormat, zone: &str) -> TimestampConfig {
        TimestampConfig {
            pattern: regex::Regex::new(pattern).unwrap(),
            format,
            zone: crate::config::load::zone_named(zone).unwrap(),
        }
    }

    /// Seconds since the epoch of `at`.
    fn unix(at: SystemTime) -> i64 {
        i64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn syslog_times_take_the_year_nearest_now() {
        let syslog = config(
            r"^(\w{3} +\d{1,2} \d\d:\d\d:\d\d)",
            TimeFormat::Strftime("%b %e %H:%M:%S".into()),
            "Asia/Shanghai",
        );
        let line = "Dec 10 06:55:46 web-1 sshd[2201]: Failed password for root";
        // Read on 2026-12-10 (UTC noon): the same year, 06:55:46 in Shanghai is 22:55:46 UTC
        // the day before.
        let now = at(1_796_904_000);
        assert_eq!(unix(event_time(&syslog, line, now).unwrap()), 1_796_856_946);
        // Read on 2027-01-02: December is last year's.
        let now = at(1_798_848_000);
        let got = event_time(&syslog, line, now).unwrap();
        assert_eq!(unix(got), 1_796_856_946, "December 2026, not 2027");
        // Read on 2026-01-02: December 2025.
        let now = at(1_767_312_000);
        let got = event_time(&syslog, line, now).unwrap();
        assert_eq!(unix(got), 1_796_856_946 - 365 * 86_400);
        // A space-padded day.
        let line = "Dec  1 06:55:46 web-1 kernel: oops";
        let now = at(1_796_904_000);
        assert_eq!(
            unix(event_time(&syslog, line, now).unwrap()),
            1_796_856_946 - 9 * 86_400
        );
        // No time, or an impossible one: none.
        assert!(event_time(&syslog, "no time here", now).is_none());
        assert!(event_time(&syslog, "Dec 32 06:55:46 x", now).is_none());
    }

    #[test]
    fn nginx_times_carry_their_offset() {
        let nginx = config(
            r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]",
            TimeFormat::Strftime("%d/%b/%Y:%H:%M:%S %z".into()),
            "UTC",
        );
        let line = r#"198.51.100.23 - - [25/Nov/2026:08:01:03 +0800] "POST /api/v1/orders HTTP/1.1" 502 157"#;
        // 08:01:03 at +08:00 is 00:01:03 UTC, whatever the input's zone.
        let got = event_time(&nginx, line, SystemTime::now()).unwrap();
        assert_eq!(unix(got), 1_795_564_863);
    }

    #[test]
    fn rfc3339_and_unix_times() {
        let rfc = config(r"^(\S+)", TimeFormat::Rfc3339, "UTC");
        let line = "2026-11-25T08:01:02.345678Z 0 [ERROR] [MY-012592] [InnoDB] error 28";
        let got = event_time(&rfc, line, SystemTime::now()).unwrap();
        assert_eq!(
            got.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_795_593_662, 345_678_000)
        );
        let with_offset = "2026-11-25T16:01:02+08:00 x";
        assert_eq!(
            unix(event_time(&rfc, with_offset, SystemTime::now()).unwrap()),
            1_795_593_662
        );
        assert!(event_time(&rfc, "2026-11-25T08:01:02 no offset", SystemTime::now()).is_none());
        let unix_s = config(r"ts=(\S+)", TimeFormat::Unix, "UTC");
        let got = event_time(&unix_s, "ts=1795593662.5 x", SystemTime::now()).unwrap();
        assert_eq!(
            got.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1_795_593_662_500)
        );
        let unix_ms = config(r"ts=(\d+)", TimeFormat::UnixMs, "UTC");
        let got = event_time(&unix_ms, "ts=1795593662345", SystemTime::now()).unwrap();
        assert_eq!(
            got.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(1_795_593_662_345)
        );
    }

    #[test]
    fn times_without_an_offset_are_read_in_the_inputs_zone() {
        let java = |zone| {
            config(
                r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})",
                TimeFormat::Strftime("%Y-%m-%d %H:%M:%S%.f".into()),
                zone,
            )
        };
        let line = "2026-11-25 08:01:02.345 ERROR 4242 --- [main] c.e.Orders : boom";
        let shanghai = event_time(&java("Asia/Shanghai"), line, SystemTime::now()).unwrap();
        let utc = event_time(&java("UTC"), line, SystemTime::now()).unwrap();
        assert_eq!(
            utc.duration_since(shanghai).unwrap(),
            Duration::from_secs(8 * 3600)
        );
        assert_eq!(TimeZone::UTC.iana_name(), Some("UTC"));
    }
}
