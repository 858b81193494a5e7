//! Reads the main config file and builds a validated [`Config`], or returns every problem found
//! as a [`Diagnostic`] with file, line and column.
//!
//! Two passes over the same text: serde (through `raw`) for the values, `Spans` for positions.
//! A YAML or type error stops the file there (serde cannot go on), but everything after parsing
//! (env expansion, globs, regexes, URLs, durations, numbers) is checked entry by entry and
//! reported together.

pub mod chat;
mod input;
mod message;

pub use crate::config::load::message::zone_named;
pub mod cluster;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::diag::from_serde_message;
use crate::config::env::{expand, process_env};
use crate::config::pattern::compile;
use crate::config::raw::{Number, OneOrMany, RawConfig, RawInput, RawMultiline, RawRobot};
use crate::config::span::{Seg, Spans};
use crate::config::{
    Config, DEFAULT_MAX_LINE_BYTES, Diagnostic, Diagnostics, InputConfig, MultilineConfig,
    RobotConfig, StartAt, Webhook,
};
use crate::secret::Secret;
use crate::yaml_path;

/// Default `state_dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dingtail";
/// How long a request waits for DingTalk's answer, unless a robot says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` a robot may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait between retries after failures without an answer, unless a robot says
/// otherwise.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The longest `backoff_max` a robot may set.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// DingTalk's limit, and the default `per_minute`.
pub const DEFAULT_PER_MINUTE: u32 = 20;

/// Loads and validates the main config at `path`, expanding `${VAR}` from the process
/// environment.
///
/// # Errors
/// Every problem found, each with file, line and column.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with_env(path, &process_env)
}

/// [`load`] with a chosen environment (tests use a fixed one).
///
/// # Errors
/// Every problem found, each with file, line and column.
pub fn load_with_env(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let text = fs::read_to_string(path).map_err(|err| {
        Diagnostics(vec![Diagnostic::at(
            path,
            0,
            0,
            format!("cannot read config: {err}"),
        )])
    })?;
    parse(path, &text, lookup)
}

/// Validates config `text` as if read from `path`.
///
/// # Errors
/// Every problem found, each with file, line and column.
pub fn parse(
    path: &Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let spans = Spans::parse(text).map_err(|err| {
        let diagnostic = Diagnostic::at(
            path,
            err.pos.line,
            err.pos.column,
            format!("YAML syntax error: {}", err.message),
        );
        Diagnostics(vec![match err.hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }])
    })?;
    let raw: RawConfig = if text.trim().is_empty() {
        return Err(Diagnostics(vec![Diagnostic::at(
            path,
            0,
            0,
            "the config file is empty",
        )]));
    } else {
        serde_yaml::from_str(text).map_err(|err| {
            let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
            let (message, hint) = from_serde_message(&err.to_string());
            let mut diagnostic = Diagnostic::at(path, line, column, message);
            if let Some(hint) = hint {
                diagnostic = diagnostic.with_hint(hint);
            }
            Diagnostics(vec![diagnostic])
        })?
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loader = Loader {
        file: path,
        base,
        spans,
        lookup,
        diags: Diagnostics::default(),
    };
    let config = loader.build(raw);
    if loader.diags.is_empty() {
        Ok(config)
    } else {
        Err(loader.diags)
    }
}

/// The state of one validation pass: where we are and what went wrong so far.
struct Loader<'a> {
    file: &'a Path,
    base: PathBuf,
    spans: Spans,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    diags: Diagnostics,
}

impl Loader<'_> {
    fn build(&mut self, raw: RawConfig) -> Config {
        let timezone = self.timezone(raw.timezone.as_deref());
        let language = self.language(raw.language.as_deref());
        let people = self.people(&raw.people);
        let state_dir = match &raw.state_dir {
            Some(dir) => self.path_value(&yaml_path!["state_dir"], dir),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        if raw.inputs.is_empty() {
            self.error(
                &yaml_path!["inputs"],
                "the config defines no inputs (`inputs:` is empty or missing)",
            );
        }
        let inputs: BTreeMap<String, InputConfig> = raw
            .inputs
            .iter()
            .filter_map(|(name, input)| Some((name.clone(), self.input(name, input, &timezone)?)))
            .collect();
        let robots: BTreeMap<String, RobotConfig> = raw
            .robots
            .iter()
            .filter_map(|(name, robot)| Some((name.clone(), self.robot(name, robot)?)))
            .collect();
        let rule_globs = raw
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, glob)| {
                let path = yaml_path!["rules", i];
                let glob = self.absolute(&path, glob)?;
                self.check_glob(&path, &glob);
                Some(glob)
            })
            .collect();
        let listen = raw.listen.as_ref().and_then(|listen| {
            let path = yaml_path!["listen"];
            let listen = self.text(&path, listen)?;
            match listen.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.error_value(
                        &path,
                        format!("`listen` must be an address like 127.0.0.1:9184, not `{listen}`"),
                    );
                    None
                }
            }
        });
        let host = raw
            .host
            .as_ref()
            .and_then(|host| self.text(&yaml_path!["host"], host))
            .unwrap_or_else(machine_host_name);
        let chat = raw.chat.as_ref().and_then(|chat| self.chat(chat));
        let cluster = raw
            .cluster
            .as_ref()
            .and_then(|cluster| self.cluster(cluster));
        Config {
            source: self.file.to_path_buf(),
            state_dir,
            inputs,
            robots,
            rule_globs,
            listen,
            host,
            reload_on_change: raw.reload_on_change.unwrap_or(true),
            chat,
            timezone,
            language,
            people,
            cluster,
        }
    }

    fn input(
        &mut self,
        name: &str,
        raw: &RawInput,
        zone: &jiff::tz::TimeZone,
    ) -> Option<InputConfig> {
        let at = |key: &str| yaml_path!["inputs", name, key];
        if !valid_name(name) {
            self.error(
                &yaml_path!["inputs", name],
                format!("input name `{name}` may only hold letters, digits, `_`, `-` and `.`"),
            );
        }
        let journald = raw.journald.as_ref().map(|j| self.journald(name, j));
        let paths = match &raw.paths {
            Some(paths) => self.globs(&at("paths"), paths, Absolute::Yes),
            None => Vec::new(),
        };
        match (&raw.paths, &journald) {
            (Some(_), Some(_)) => self.error(
                &at("journald"),
                format!(
                    "input `{name}` has both `paths` and `journald`: a journald input reads the \
                     journal, not files (make two inputs)"
                ),
            ),
            (None, None) => self.error(
                &yaml_path!["inputs", name],
                format!(
                    "input `{name}` has no paths (or `journald: {{}}` to read the systemd journal)"
                ),
            ),
            (Some(paths), None) if paths.to_vec().is_empty() => {
                self.error(&at("paths"), format!("input `{name}` has no paths"));
            }
            _ => {}
        }
        let exclude = match &raw.exclude {
            Some(exclude) => self.globs(&at("exclude"), exclude, Absolute::No),
            None => Vec::new(),
        };
        let start_at = match raw
            .start_at
            .as_deref()
            .map(|s| (s, self.text(&at("start_at"), s)))
        {
            None => StartAt::End,
            Some((_, Some(value))) if value == "end" => StartAt::End,
            Some((_, Some(value))) if value == "beginning" => StartAt::Beginning,
            Some((_, Some(value))) => {
                self.error_value(
                    &at("start_at"),
                    format!("`start_at` must be `end` or `beginning`, not `{value}`"),
                );
                StartAt::End
            }
            Some((_, None)) => StartAt::End,
        };
        let poll_interval = self.duration(
            &at("poll_interval"),
            raw.poll_interval.as_deref(),
            Duration::from_secs(1),
        );
        let max_line_bytes = self.number(
            &at("max_line_bytes"),
            raw.max_line_bytes.as_ref(),
            DEFAULT_MAX_LINE_BYTES as u64,
            64..=1 << 30,
        );
        let multiline = raw.multiline.as_ref().and_then(|m| self.multiline(name, m));
        let decoding = self.decoding(name, raw, journald.is_some());
        let journald = match journald {
            Some(journald) => Some(journald?),
            None if paths.is_empty() => return None,
            None => None,
        };
        let timestamp = raw
            .timestamp
            .as_ref()
            .and_then(|t| self.timestamp(name, t, zone));
        Some(InputConfig {
            name: name.to_string(),
            paths,
            exclude,
            start_at,
            poll_interval,
            max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(DEFAULT_MAX_LINE_BYTES),
            multiline,
            decoding,
            journald,
            timestamp,
        })
    }

    fn multiline(&mut self, name: &str, raw: &RawMultiline) -> Option<MultilineConfig> {
        let at = |key: &str| yaml_path!["inputs", name, "multiline", key];
        let pattern = self.text(&at("start"), &raw.start)?;
        let start = match compile(&pattern) {
            Ok(regex) => Some(regex),
            Err(err) => {
                let pos = self.spans.inside_value(&at("start"), err.offset);
                self.diags.push(Diagnostic::at(
                    self.file,
                    pos.line,
                    pos.column,
                    format!("multiline.start: {}", err.message),
                ));
                None
            }
        };
        let max_lines = self.number(&at("max_lines"), raw.max_lines.as_ref(), 500, 1..=100_000);
        let timeout = self.duration(
            &at("timeout"),
            raw.timeout.as_deref(),
            Duration::from_secs(2),
        );
        Some(MultilineConfig {
            start: start?,
            max_lines: usize::try_from(max_lines).unwrap_or(500),
            timeout,
        })
    }

    fn robot(&mut self, name: &str, raw: &RawRobot) -> Option<RobotConfig> {
        let at = |key: &str| yaml_path!["robots", name, key];
        if !valid_name(name) {
            self.error(
                &yaml_path!["robots", name],
                format!("robot name `{name}` may only hold letters, digits, `_`, `-` and `.`"),
            );
        }
        let webhook = self.text(&at("webhook"), &raw.webhook).and_then(|webhook| {
            if webhook == "stdout" {
                return Some(Webhook::Stdout);
            }
            if webhook == "console" {
                return Some(Webhook::Console);
            }
            match url::Url::parse(&webhook) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Some(Webhook::Url(Secret::new(webhook)))
                }
                // The URL may hold a token: never echo it.
                _ => {
                    self.error_value(
                        &at("webhook"),
                        format!(
                            "robot `{name}`: `webhook` must be `console`, `stdout` or an http(s) URL"
                        ),
                    );
                    None
                }
            }
        });
        let secret = raw
            .secret
            .as_ref()
            .and_then(|secret| self.text(&at("secret"), secret))
            .filter(|secret| !secret.is_empty())
            .map(Secret::new);
        let keywords: Vec<String> = raw
            .keywords
            .iter()
            .enumerate()
            .filter_map(|(i, keyword)| {
                self.text(&yaml_path!["robots", name, "keywords", i], keyword)
            })
            .filter(|keyword| !keyword.is_empty())
            .collect();
        if keywords.len() > 10 {
            self.error(
                &at("keywords"),
                format!(
                    "robot `{name}`: DingTalk allows at most 10 keywords, found {}",
                    keywords.len()
                ),
            );
        }
        let per_minute = self.number(
            &at("per_minute"),
            raw.per_minute.as_ref(),
            u64::from(DEFAULT_PER_MINUTE),
            1..=10_000,
        );
        let window = self.duration(
            &at("window"),
            raw.window.as_deref(),
            Duration::from_secs(60),
        );
        let linger =
            self.duration_or_zero(&at("linger"), raw.linger.as_deref(), Duration::from_secs(2));
        let throttle_pause = self.duration(
            &at("throttle_pause"),
            raw.throttle_pause.as_deref(),
            Duration::from_secs(600),
        );
        let timeout = self.duration(&at("timeout"), raw.timeout.as_deref(), DEFAULT_TIMEOUT);
        if timeout > MAX_TIMEOUT {
            self.error_value(
                &at("timeout"),
                format!(
                    "robot `{name}`: `timeout` may be at most {}",
                    humantime::format_duration(MAX_TIMEOUT)
                ),
            );
        }
        let backoff_max = self.duration(
            &at("backoff_max"),
            raw.backoff_max.as_deref(),
            DEFAULT_BACKOFF_MAX,
        );
        if backoff_max > MAX_BACKOFF {
            self.error_value(
                &at("backoff_max"),
                format!(
                    "robot `{name}`: `backoff_max` may be at most {} (a longer wait leaves the group \
                     without news long after DingTalk is back)",
                    humantime::format_duration(MAX_BACKOFF)
                ),
            );
        }
        let msgtype = self.msgtype(&at("msgtype"), raw.msgtype.as_deref());
        let summary_title = raw
            .summary_title
            .as_ref()
            .map(|source| self.template(&at("summary_title"), source));
        Some(RobotConfig {
            name: name.to_string(),
            webhook: webhook?,
            secret,
            keywords,
            per_minute: u32::try_from(per_minute).unwrap_or(DEFAULT_PER_MINUTE),
            window,
            linger,
            throttle_pause,
            timeout: timeout.min(MAX_TIMEOUT),
            backoff_max: backoff_max.min(MAX_BACKOFF),
            msgtype,
            summary_title,
        })
    }

    /// Expands `${VAR}` in `value`; reports and returns `None` on failure.
    fn text(&mut self, path: &[Seg], value: &str) -> Option<String> {
        match expand(value, self.lookup) {
            Ok(expanded) => Some(expanded),
            Err(err) => {
                self.error_value(path, err.to_string());
                None
            }
        }
    }

    fn absolute(&mut self, path: &[Seg], value: &str) -> Option<String> {
        let value = self.text(path, value)?;
        if value.is_empty() {
            self.error_value(path, "empty path");
            return None;
        }
        if Path::new(&value).is_absolute() {
            Some(value)
        } else {
            Some(self.base.join(&value).to_string_lossy().into_owned())
        }
    }

    fn path_value(&mut self, path: &[Seg], value: &str) -> PathBuf {
        PathBuf::from(self.absolute(path, value).unwrap_or_default())
    }

    fn globs(&mut self, path: &[Seg], raw: &OneOrMany, absolute: Absolute) -> Vec<String> {
        let mut out = Vec::new();
        for (i, glob) in raw.to_vec().iter().enumerate() {
            let mut item = path.to_vec();
            if raw.is_list() {
                item.push(Seg::Index(i));
            }
            let glob = match absolute {
                Absolute::Yes => self.absolute(&item, glob),
                Absolute::No => self.text(&item, glob),
            };
            if let Some(glob) = glob {
                if self.check_glob(&item, &glob) {
                    out.push(glob);
                }
            }
        }
        out
    }

    fn check_glob(&mut self, path: &[Seg], glob: &str) -> bool {
        match globset::Glob::new(glob) {
            Ok(_) => true,
            Err(err) => {
                self.error_value(path, format!("invalid glob: {}", err.kind()));
                false
            }
        }
    }

    fn duration(&mut self, path: &[Seg], raw: Option<&str>, default: Duration) -> Duration {
        let value = self.duration_or_zero(path, raw, default);
        if value.is_zero() {
            self.error_value(path, "must be longer than zero");
            return default;
        }
        value
    }

    fn duration_or_zero(&mut self, path: &[Seg], raw: Option<&str>, default: Duration) -> Duration {
        let Some(raw) = raw else { return default };
        let Some(value) = self.text(path, raw) else {
            return default;
        };
        if value.trim() == "0" {
            return Duration::ZERO;
        }
        match humantime::parse_duration(value.trim()) {
            Ok(duration) => duration,
            Err(err) => {
                self.error_value(
                    path,
                    format!("invalid duration `{value}`: {err} (write e.g. `500ms`, `2s`, `10m`)"),
                );
                default
            }
        }
    }

    fn number(
        &mut self,
        path: &[Seg],
        raw: Option<&Number>,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let value = match raw {
            None => return default,
            Some(Number::Int(n)) => *n,
            Some(Number::Text(text)) => {
                let Some(text) = self.text(path, text) else {
                    return default;
                };
                match text.trim().parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        self.error_value(path, format!("expected a whole number, found `{text}`"));
                        return default;
                    }
                }
            }
        };
        if !range.contains(&value) {
            self.error_value(
                path,
                format!(
                    "must be between {} and {}, found {value}",
                    range.start(),
                    range.end()
                ),
            );
            return default;
        }
        value
    }

    fn diagnostic_value(&self, path: &[Seg], message: impl Into<String>) -> Diagnostic {
        let pos = self.spans.value(path);
        Diagnostic::at(self.file, pos.line, pos.column, message)
    }

    fn error(&mut self, path: &[Seg], message: impl Into<String>) {
        let pos = self.spans.key_or_value(path);
        self.diags
            .push(Diagnostic::at(self.file, pos.line, pos.column, message));
    }

    fn error_value(&mut self, path: &[Seg], message: impl Into<String>) {
        let pos = self.spans.value(path);
        self.diags
            .push(Diagnostic::at(self.file, pos.line, pos.column, message));
    }
}

#[derive(Clone, Copy)]
enum Absolute {
    Yes,
    No,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The machine's host name, for messages.
pub fn machine_host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|file| fs::read_to_string(file).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests;
