//! The template context: the names a rule's templates may use, the values they get, and times
//! in the configured zone (the `datetime` filter, the times of summary headings).
//!
//! The names are fixed here and checked at load time against every template (strict undefined),
//! so a typo in a template is a load error with a position, never a runtime surprise:
//! - `title`, `template`, `link` and templated `at:` entries (one event): every named capture of
//!   the rule, [`MATCH_NAMES`];
//! - `summary` (a rule's heading in a summary): [`SUMMARY_NAMES`];
//! - a robot's `summary_title`: [`SUMMARY_TITLE_NAMES`].
//!
//! Times are RFC 3339 strings in the config's `timezone:` with their offset
//! (`2026-11-25T08:01:02+08:00`, `…Z` in UTC), so they print sensibly as they are;
//! `{{ time | datetime("%H:%M:%S") }}` reformats one in the same zone with any strftime format
//! (jiff's: `%Y %m %d %H %M %S %b %a %j %z %:z %Z %s %F %T …`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Value;

use crate::lang::Language;

/// The context names of `title` and `template`, besides the rule's named captures. A capture
/// with one of these names is shadowed by the context value.
pub const MATCH_NAMES: &[&str] = &[
    "line",
    "file",
    "input",
    "host",
    "rule",
    "severity",
    "time",
    "count",
    "first_seen",
    "last_seen",
];

/// The context names of `summary`.
pub const SUMMARY_NAMES: &[&str] = &[
    "rule",
    "severity",
    "count",
    "first_seen",
    "last_seen",
    "hosts",
    "files",
];

/// The context names of a robot's `summary_title`.
pub const SUMMARY_TITLE_NAMES: &[&str] = &["level", "count", "rules", "hosts", "host"];

/// Functions minijinja provides to every template (they look like variables to its analysis).
pub const BUILTIN_NAMES: &[&str] = &["range", "dict", "namespace", "debug"];

/// The default format of the `datetime` filter.
const DEFAULT_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A context under construction: names to values.
#[derive(Debug, Default)]
pub struct Context {
    values: BTreeMap<String, Value>,
}

impl Context {
    /// Sets `name` to `value` (a later set wins).
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.values.insert(name.to_string(), value.into());
    }

    /// The finished context.
    pub fn into_value(self) -> Value {
        Value::from(self.values)
    }
}

/// `at` in `zone` as RFC 3339 to the second, with its offset (`Z` when the offset is zero).
pub fn rfc3339(at: SystemTime, zone: &TimeZone) -> String {
    let Ok(timestamp) = Timestamp::try_from(at) else {
        return String::new();
    };
    let zoned = timestamp.to_zoned_datetime(zone.clone());
    let format = if zoned.offset().seconds() == 0 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%M:%S%:z"
    };
    jiff::fmt::strtime::format(format, &zoned).unwrap_or_default()
}

/// `at` in `zone` with strftime `format`.
///
/// # Errors
/// The format is not one jiff can print.
pub fn format(at: SystemTime, format: &str, zone: &TimeZone) -> Result<String, jiff::Error> {
    let timestamp = Timestamp::try_from(at)?;
    jiff::fmt::strtime::format(format, &timestamp.to_zoned_datetime(zone.clone()))
}

/// The `datetime` filter: formats a time (an RFC 3339 string with an offset, or seconds since
/// the epoch) in `zone` with a strftime `format` (default `%Y-%m-%d %H:%M:%S`).
///
/// # Errors
/// The value is not a time, or the format cannot be printed.
pub fn datetime(
    value: &Value,
    format_text: Option<&str>,
    zone: &TimeZone,
) -> Result<String, minijinja::Error> {
    let timestamp = if let Some(text) = value.as_str() {
        text.trim().parse::<Timestamp>().ok()
    } else {
        i64::try_from(value.clone())
            .ok()
            .and_then(|seconds| Timestamp::from_second(seconds).ok())
    };
    let Some(timestamp) = timestamp else {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("datetime: `{value}` is not a time"),
        ));
    };
    let zoned = timestamp.to_zoned_datetime(zone.clone());
    jiff::fmt::strtime::format(format_text.unwrap_or(DEFAULT_FORMAT), &zoned).map_err(|err| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("datetime: {err}"),
        )
    })
}

/// A summary heading's time span in `zone`: `2026-11-25 08:01:02 +08:00` for one instant, else
/// `2026-11-25 08:01:02 → 08:05:10 +08:00 (4 min 8 s)` (the last date only when it differs).
pub fn span(first: SystemTime, last: SystemTime, zone: &TimeZone, language: Language) -> String {
    let day = |at: SystemTime| {
        Timestamp::try_from(at)
            .map(|t| t.to_zoned_datetime(zone.clone()).date())
            .ok()
    };
    let stamp = |at: SystemTime, fmt: &str| format(at, fmt, zone).unwrap_or_default();
    let first_text = stamp(first, "%Y-%m-%d %H:%M:%S");
    let offset = stamp(last, "%:z");
    let whole_seconds = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    if whole_seconds(first) == whole_seconds(last) {
        return format!("{first_text} {offset}");
    }
    let last_format = if day(first) == day(last) {
        "%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let span = format!("{first_text} → {} {offset}", stamp(last, last_format));
    let length = last.duration_since(first).unwrap_or(Duration::ZERO);
    language.lasting(&span, length)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use minijinja::Value;

    use crate::config::load::zone_named;
    use crate::lang::Language;
    use crate::render::context::{datetime, rfc3339, span};

    #[test]
    fn a_known_instant_in_shanghai_and_in_utc() {
        // 2024-02-29 13:05:09 UTC (a leap day) is 21:05:09 in Shanghai.
        let at = UNIX_EPOCH + Duration::from_secs(1_709_211_909);
        let utc = zone_named("UTC").unwrap();
        let shanghai = zone_named("Asia/Shanghai").unwrap();
        assert_eq!(rfc3339(at, &utc), "2024-02-29T13:05:09Z");
        assert_eq!(rfc3339(at, &shanghai), "2024-02-29T21:05:09+08:00");
        let time = Value::from(rfc3339(at, &shanghai));
        assert_eq!(
            datetime(&time, Some("%H:%M"), &utc).unwrap(),
            "13:05",
            "a time given with its offset is shown in the config's zone"
        );
        assert_eq!(
            datetime(&time, Some("%F %T %Z %:z %b %a %j"), &shanghai).unwrap(),
            "2024-02-29 21:05:09 CST +08:00 Feb Thu 060"
        );
        assert_eq!(
            datetime(&Value::from(1_709_211_909), None, &shanghai).unwrap(),
            "2024-02-29 21:05:09"
        );
        assert!(datetime(&Value::from("soon"), None, &utc).is_err());
        assert!(datetime(&time, Some("%Q%"), &utc).is_err());
    }

    #[test]
    fn spans_show_the_zone_offset_and_the_length() {
        let t = |s: u64| UNIX_EPOCH + Duration::from_secs(1_709_211_900 + s);
        let shanghai = zone_named("Asia/Shanghai").unwrap();
        let utc = zone_named("UTC").unwrap();
        assert_eq!(
            span(t(0), t(248), &shanghai, Language::ZhCn),
            "2024-02-29 21:05:00 → 21:09:08 +08:00（4 分 8 秒）"
        );
        assert_eq!(
            span(t(0), t(6 * 3600), &utc, Language::En),
            "2024-02-29 13:05:00 → 19:05:00 +00:00 (6 h)"
        );
        assert_eq!(
            span(t(0), t(11 * 3600), &shanghai, Language::En),
            "2024-02-29 21:05:00 → 2024-03-01 08:05:00 +08:00 (11 h)"
        );
        assert_eq!(
            span(t(5), t(5), &utc, Language::En),
            "2024-02-29 13:05:05 +00:00"
        );
    }
}
