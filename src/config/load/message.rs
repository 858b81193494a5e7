//! Validation of the main-file keys that shape messages (issue 11): `timezone:`, `language:`,
//! `people:`, a robot's `msgtype:` and `summary_title:`, and an input's `timestamp:`. A child of
//! `load`, so that it shares the loader's `${VAR}` expansion and positions while keeping these
//! keys' rules in one place.
//!
//! Zones come from the system's zone data (`/usr/share/zoneinfo`, the `tzdata` package); `UTC`
//! works without it. An unknown zone is a load error that says so, never a silent fallback; only
//! the default (the machine's own zone) falls back to UTC when the machine has none.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;

use crate::config::load::Loader;
use crate::config::pattern::compile;
use crate::config::raw::{RawPerson, RawTimestamp};
use crate::config::span::Seg;
use crate::config::{TemplateSpec, TimeFormat, TimestampConfig};
use crate::event::{Mentions, MsgType};
use crate::lang::Language;
use crate::yaml_path;

impl Loader<'_> {
    /// `timezone:` (or an input's): an IANA name or `UTC`; `None` after reporting a bad one.
    pub(super) fn zone(&mut self, path: &[Seg], raw: &str) -> Option<TimeZone> {
        let name = self.text(path, raw)?;
        match zone_named(name.trim()) {
            Ok(zone) => Some(zone),
            Err(message) => {
                self.error_value(path, message);
                None
            }
        }
    }

    /// The top-level zone: `timezone:`, else the machine's, else UTC.
    pub(super) fn timezone(&mut self, raw: Option<&str>) -> TimeZone {
        match raw {
            Some(raw) => self
                .zone(&yaml_path!["timezone"], raw)
                .unwrap_or(TimeZone::UTC),
            None => TimeZone::try_system().unwrap_or(TimeZone::UTC),
        }
    }

    /// `language:`.
    pub(super) fn language(&mut self, raw: Option<&str>) -> Language {
        let Some(raw) = raw else {
            return Language::default();
        };
        let path = yaml_path!["language"];
        let Some(name) = self.text(&path, raw) else {
            return Language::default();
        };
        Language::parse(name.trim()).unwrap_or_else(|| {
            self.error_value(
                &path,
                format!(
                    "`language` must be {}, not `{name}`",
                    Language::NAMES.join(" or ")
                ),
            );
            Language::default()
        })
    }

    /// `people:`: every mobile and user id checked.
    pub(super) fn people(
        &mut self,
        raw: &BTreeMap<String, RawPerson>,
    ) -> BTreeMap<String, Mentions> {
        let mut people = BTreeMap::new();
        for (name, person) in raw {
            let mut mentions = Mentions::default();
            for (i, mobile) in person.mobiles.iter().enumerate() {
                let path = yaml_path!["people", name.as_str(), "mobiles", i];
                let Some(mobile) = self.text(&path, &mobile.text()) else {
                    continue;
                };
                if Mentions::is_mobile(&mobile) {
                    mentions.mobiles.push(mobile);
                } else {
                    self.error_value(
                        &path,
                        format!("`{mobile}` is not a mobile number (digits, maybe `+86-`)"),
                    );
                }
            }
            for (i, user_id) in person.user_ids.iter().enumerate() {
                let path = yaml_path!["people", name.as_str(), "user_ids", i];
                let Some(user_id) = self.text(&path, &user_id.text()) else {
                    continue;
                };
                if Mentions::is_user_id(&user_id) {
                    mentions.user_ids.push(user_id);
                } else {
                    self.error_value(&path, format!("`{user_id}` is not a DingTalk user id"));
                }
            }
            if person.mobiles.is_empty() && person.user_ids.is_empty() {
                self.error(
                    &yaml_path!["people", name.as_str()],
                    format!("person `{name}` has no `mobiles` or `user_ids`"),
                );
            }
            people.insert(name.clone(), mentions);
        }
        people
    }

    /// A robot's `msgtype:`.
    pub(super) fn msgtype(&mut self, path: &[Seg], raw: Option<&str>) -> MsgType {
        let Some(raw) = raw else {
            return MsgType::default();
        };
        let Some(name) = self.text(path, raw) else {
            return MsgType::default();
        };
        MsgType::parse(name.trim()).unwrap_or_else(|| {
            self.error_value(
                path,
                format!(
                    "`msgtype` must be {}, not `{name}`",
                    MsgType::NAMES.join(", ")
                ),
            );
            MsgType::default()
        })
    }

    /// A template of the main file at `path` (compiled and checked by `render`).
    pub(super) fn template(&self, path: &[Seg], source: &str) -> TemplateSpec {
        TemplateSpec {
            source: source.to_string(),
            file: self.file.to_path_buf(),
            node: self.spans.node(path),
        }
    }

    /// An input's `timestamp:`; `default_zone` for times without an offset unless it names one.
    pub(super) fn timestamp(
        &mut self,
        input: &str,
        raw: &RawTimestamp,
        default_zone: &TimeZone,
    ) -> Option<TimestampConfig> {
        let at = |key: &str| yaml_path!["inputs", input, "timestamp", key];
        let pattern = self.text(&at("pattern"), &raw.pattern)?;
        let pattern = match compile(&pattern) {
            Ok(regex) if regex.captures_len() == 2 => Some(regex),
            Ok(regex) => {
                self.error_value(
                    &at("pattern"),
                    format!(
                        "timestamp.pattern needs exactly one capture group (the time), found {}",
                        regex.captures_len() - 1
                    ),
                );
                None
            }
            Err(err) => {
                let pos = self.spans.inside_value(&at("pattern"), err.offset);
                self.diags.push(crate::config::Diagnostic::at(
                    self.file,
                    pos.line,
                    pos.column,
                    format!("timestamp.pattern: {}", err.message),
                ));
                None
            }
        };
        let format = self.text(&at("format"), &raw.format)?;
        let format = match format.trim() {
            "rfc3339" => Some(TimeFormat::Rfc3339),
            "unix" => Some(TimeFormat::Unix),
            "unix_ms" => Some(TimeFormat::UnixMs),
            strftime if strftime.contains('%') => match check_strftime(strftime) {
                Ok(()) => Some(TimeFormat::Strftime(strftime.to_string())),
                Err(message) => {
                    self.error_value(&at("format"), message);
                    None
                }
            },
            other => {
                self.error_value(
                    &at("format"),
                    format!(
                        "timestamp.format must be a strftime format (with `%`), `rfc3339`, \
                         `unix` or `unix_ms`, not `{other}`"
                    ),
                );
                None
            }
        };
        let zone = match &raw.timezone {
            Some(raw) => self.zone(&at("timezone"), raw)?,
            None => default_zone.clone(),
        };
        Some(TimestampConfig {
            pattern: pattern?,
            format: format?,
            zone,
        })
    }
}

/// The zone called `name`: `UTC` always works; other names need the system's zone data.
///
/// # Errors
/// A message for the config's reader naming the zone and what to do.
pub fn zone_named(name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("utc") || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|err| {
        format!(
            "unknown time zone `{name}` ({err}); write an IANA name such as `Asia/Shanghai`, or \
             `UTC`; zone data is read from /usr/share/zoneinfo (the `tzdata` package)"
        )
    })
}

/// Checks a strftime format by formatting a known time with it (jiff refuses unknown
/// directives) and by requiring what a time needs: a day and an hour, or seconds since the epoch.
fn check_strftime(format: &str) -> Result<(), String> {
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned_datetime(TimeZone::UTC);
    if let Err(err) = jiff::fmt::strtime::format(format, &sample) {
        return Err(format!(
            "timestamp.format `{format}` is not a usable strftime format: {err}"
        ));
    }
    let has = |directives: &[&str]| directives.iter().any(|d| format.contains(d));
    let dated = has(&["%d", "%e", "%j", "%F", "%D", "%c", "%x"]);
    let timed = has(&["%H", "%I", "%k", "%l", "%T", "%R", "%c", "%X", "%r"]);
    if has(&["%s"]) || (dated && timed) {
        Ok(())
    } else {
        Err(format!(
            "timestamp.format `{format}` needs a date and a time of day (e.g. `%b %e %H:%M:%S`) \
             or `%s`"
        ))
    }
}

#[cfg(test)]
mod tests;
