//! The input keys that say how lines are read: `format`, `content`, `encoding`,
//! `message_field`, `partial_timeout` (a `Decoding`) and `journald:`.

use crate::config::diag::did_you_mean;
use crate::config::load::Loader;
use crate::config::raw::{OneOrMany, RawInput, RawJournald};
use crate::config::span::Seg;
use crate::config::{Content, DEFAULT_PARTIAL_TIMEOUT, Decoding, Format, JournaldConfig};
use crate::yaml_path;

impl Loader<'_> {
    /// `format`, `content`, `encoding`, `message_field` and `partial_timeout` of input `name`.
    pub(super) fn decoding(&mut self, name: &str, raw: &RawInput, journald: bool) -> Decoding {
        let at = |key: &str| yaml_path!["inputs", name, key];
        let mut decoding = Decoding::default();
        if let Some(format) = raw
            .format
            .as_deref()
            .and_then(|f| self.text(&at("format"), f))
        {
            match Format::parse(&format) {
                Some(Format::Cri | Format::Docker | Format::Auto) if journald => self.error_value(
                    &at("format"),
                    format!(
                        "input `{name}`: a journald input's `format` is `plain` or `json` (the \
                         journal's MESSAGE), not `{format}`"
                    ),
                ),
                Some(parsed) => decoding.format = parsed,
                None => {
                    let mut diagnostic = self.diagnostic_value(
                        &at("format"),
                        format!(
                            "`format` must be one of {}, not `{format}`",
                            Format::NAMES.join(", ")
                        ),
                    );
                    if let Some(best) = did_you_mean(&format, Format::NAMES) {
                        diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
                    }
                    self.diags.push(diagnostic);
                }
            }
        }
        if let Some(content) = raw
            .content
            .as_deref()
            .and_then(|c| self.text(&at("content"), c))
        {
            match content.as_str() {
                "text" => decoding.content = Content::Text,
                "json"
                    if journald
                        || matches!(
                            decoding.format,
                            Format::Cri | Format::Docker | Format::Auto
                        ) =>
                {
                    decoding.content = Content::Json
                }
                "json" => self.error_value(
                    &at("content"),
                    "`content: json` applies to `cri`, `docker` and `auto` inputs and to journald \
                     inputs (a `json` input's lines are JSON already)",
                ),
                _ => self.error_value(
                    &at("content"),
                    format!("`content` must be `text` or `json`, not `{content}`"),
                ),
            }
        }
        if let Some(label) = raw
            .encoding
            .as_deref()
            .and_then(|e| self.text(&at("encoding"), e))
        {
            match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
                Some(encoding) if encoding == encoding_rs::UTF_8 => decoding.encoding = None,
                Some(encoding) if encoding.is_ascii_compatible() => {
                    decoding.encoding = Some(encoding);
                }
                Some(encoding) => self.error_value(
                    &at("encoding"),
                    format!(
                        "encoding `{label}` ({}) is not ASCII-compatible: its lines cannot be \
                         cut at newline bytes",
                        encoding.name()
                    ),
                ),
                None => self.error_value(
                    &at("encoding"),
                    format!(
                        "unknown encoding `{label}` (a WHATWG label such as utf-8, gbk, gb18030, \
                         big5, shift_jis, euc-kr, windows-1252)"
                    ),
                ),
            }
        }
        if let Some(field) = raw
            .message_field
            .as_deref()
            .and_then(|f| self.text(&at("message_field"), f))
        {
            let json = decoding.format == Format::Json
                || decoding.format == Format::Auto
                || decoding.content == Content::Json;
            if field.is_empty() {
                self.error_value(&at("message_field"), "`message_field` may not be empty");
            } else if !json {
                self.error_value(
                    &at("message_field"),
                    "`message_field` applies only to lines decoded as JSON (`format: json` or \
                     `auto`, or `content: json`)",
                );
            } else {
                decoding.message_field = Some(field);
            }
        }
        decoding.partial_timeout = self.duration(
            &at("partial_timeout"),
            raw.partial_timeout.as_deref(),
            DEFAULT_PARTIAL_TIMEOUT,
        );
        decoding
    }

    /// `journald:` of input `name`.
    pub(super) fn journald(&mut self, name: &str, raw: &RawJournald) -> Option<JournaldConfig> {
        let at = |key: &str| yaml_path!["inputs", name, "journald", key];
        let mut ok = true;
        let mut list = |loader: &mut Self, key: &str, raw: Option<&OneOrMany>| -> Vec<String> {
            let Some(raw) = raw else { return Vec::new() };
            let mut out = Vec::new();
            for (i, value) in raw.to_vec().iter().enumerate() {
                let mut path = at(key).to_vec();
                if raw.is_list() {
                    path.push(Seg::Index(i));
                }
                match loader.text(&path, value) {
                    Some(value) if !value.trim().is_empty() => out.push(value.trim().to_string()),
                    Some(_) => {
                        loader.error_value(&path, format!("`{key}` holds an empty name"));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            out
        };
        let units = list(self, "units", raw.units.as_ref());
        let identifiers = list(self, "identifiers", raw.identifiers.as_ref());
        let priority = raw.priority.as_ref().and_then(|priority| {
            let text = self.text(&at("priority"), &priority.text())?;
            match journal_priority(&text) {
                Some(priority) => Some(priority),
                None => {
                    self.error_value(
                        &at("priority"),
                        format!(
                            "`priority` must be a level (emerg, alert, crit, err, warning, \
                             notice, info, debug or 0-7) or a range such as `warning..emerg`, \
                             not `{text}`"
                        ),
                    );
                    ok = false;
                    None
                }
            }
        });
        let directory = raw
            .directory
            .as_ref()
            .map(|dir| self.path_value(&at("directory"), dir));
        ok.then_some(JournaldConfig {
            units,
            identifiers,
            priority,
            directory,
        })
    }
}

/// `text` as `journalctl -p` takes it (a level name or number, or a range `FROM..TO` of them),
/// trimmed; `None` when it is not one.
fn journal_priority(text: &str) -> Option<String> {
    const LEVELS: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    let level = |part: &str| {
        let part = part.trim();
        (LEVELS.contains(&part) || matches!(part, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7"))
            .then(|| part.to_string())
    };
    match text.split_once("..") {
        Some((from, to)) => Some(format!("{}..{}", level(from)?, level(to)?)),
        None => level(text),
    }
}
