//! The template context: the names a rule's templates may use, the values they get, and the
//! `datetime` filter for times.
//!
//! The names are fixed here and checked at load time against every template (strict undefined),
//! so a typo in a template is a load error with a position, never a runtime surprise:
//! - `title` and `template` (one event): every named capture of the rule, [`MATCH_NAMES`];
//! - `summary` (a rule's heading in a summary): [`SUMMARY_NAMES`].
//!
//! Times are RFC 3339 strings in UTC (`2026-11-25T07:56:54Z`), so they print sensibly as they are;
//! `{{ time | datetime("%H:%M:%S") }}` reformats one (strftime-style, UTC).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::Value;

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

/// Functions minijinja provides to every template (they look like variables to its analysis).
pub const BUILTIN_NAMES: &[&str] = &["range", "dict", "namespace", "debug"];

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

/// `at` as an RFC 3339 string in UTC, to the second.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The `datetime` filter: formats an RFC 3339 time (or seconds since the epoch) with a
/// strftime-style format in UTC: `%Y %m %d %H %M %S %F %T %s %z %Z %%`; other `%x` stay as they
/// are. Default format `%Y-%m-%d %H:%M:%S`.
pub fn datetime_filter(value: Value, format: Option<String>) -> Result<String, minijinja::Error> {
    let seconds = if let Some(text) = value.as_str() {
        humantime::parse_rfc3339_weak(text)
            .ok()
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    } else {
        i64::try_from(value.clone())
            .ok()
            .and_then(|n| u64::try_from(n).ok())
    };
    let Some(seconds) = seconds else {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("datetime: `{value}` is not a time"),
        ));
    };
    Ok(format_utc(
        seconds,
        format.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S"),
    ))
}

/// Formats `seconds` since the epoch with the strftime subset of [`datetime_filter`].
pub fn format_utc(seconds: u64, format: &str) -> String {
    let days = seconds / 86_400;
    let in_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    let mut out = String::with_capacity(format.len() + 8);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('F') => out.push_str(&format!("{year}-{month:02}-{day:02}")),
            Some('T') => out.push_str(&format!("{hour:02}:{minute:02}:{second:02}")),
            Some('s') => out.push_str(&seconds.to_string()),
            Some('z') => out.push_str("+0000"),
            Some('Z') => out.push_str("UTC"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use minijinja::Value;

    use crate::render::context::{datetime_filter, format_utc, rfc3339};

    #[test]
    fn formats_utc_times() {
        // 2024-02-29 13:05:09 UTC (a leap day).
        let t = 1_709_211_909;
        assert_eq!(format_utc(t, "%F %T %Z"), "2024-02-29 13:05:09 UTC");
        assert_eq!(
            format_utc(t, "%d/%m/%Y %H:%M:%S %z %% %q"),
            "29/02/2024 13:05:09 +0000 % %q"
        );
        assert_eq!(format_utc(0, "%F"), "1970-01-01");
        let at = UNIX_EPOCH + Duration::from_secs(t);
        assert_eq!(rfc3339(at), "2024-02-29T13:05:09Z");
        assert_eq!(
            datetime_filter(Value::from(rfc3339(at)), Some("%H:%M".into())).unwrap(),
            "13:05"
        );
        assert_eq!(
            datetime_filter(Value::from(t), None).unwrap(),
            "2024-02-29 13:05:09"
        );
        assert!(datetime_filter(Value::from("soon"), None).is_err());
    }
}
