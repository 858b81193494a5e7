//! Validation of the rule keys that shape a rule's messages (issue 11): `msgtype:`, `link:`,
//! `top:` and `at:` (whose entries may be templates or `people:` names). A child of `rules`, so
//! that it reports through the same file loader with positions.
//!
//! Literal entries are checked here, at load: a mobile that is not a number, a user id with
//! spaces or a person `people:` does not define is an error with its position. Entries that are
//! templates (`"{{ owner_mobile }}"`) can only be checked once rendered, per match: `render`
//! drops the bad ones then, with one warning per rule.
//!
//! A link's URL must write its scheme (`http`, `https` or `dingtalk`) and its host literally, so
//! that no value from a log can choose where a click goes; values put into it are
//! percent-encoded when rendered.

use crate::config::diag::did_you_mean;
use crate::config::raw::{RawAt, RawLink};
use crate::config::rules::FileLoader;
use crate::config::{LinkSpec, MentionKind, MentionTemplate, TemplateSpec};
use crate::event::{Mentions, MsgType};
use crate::yaml_path;

/// The schemes a link may use.
const LINK_SCHEMES: &[&str] = &["https://", "http://", "dingtalk://"];

impl FileLoader<'_> {
    /// `msgtype:`; `Err` after reporting a bad one.
    pub(super) fn rule_msgtype(
        &mut self,
        i: usize,
        rule: &str,
        raw: Option<&str>,
    ) -> Result<Option<MsgType>, ()> {
        let Some(name) = raw else { return Ok(None) };
        match MsgType::parse(name.trim()) {
            Some(msgtype) => Ok(Some(msgtype)),
            None => {
                let mut diagnostic = self.diagnostic_value(
                    &yaml_path![i, "msgtype"],
                    Some(rule),
                    format!(
                        "`msgtype` must be {}, not `{name}`",
                        MsgType::NAMES.join(", ")
                    ),
                );
                if let Some(best) = did_you_mean(name, MsgType::NAMES.iter().copied()) {
                    diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
                }
                self.diags.push(diagnostic);
                Err(())
            }
        }
    }

    /// `link:`; `Err` after reporting a URL whose scheme or host is not literal.
    pub(super) fn link(&mut self, i: usize, rule: &str, raw: &RawLink) -> Result<LinkSpec, ()> {
        let url = raw.url.trim();
        let lower = url.to_ascii_lowercase();
        let Some(scheme) = LINK_SCHEMES.iter().find(|s| lower.starts_with(**s)) else {
            self.error_value(
                &yaml_path![i, "link", "url"],
                Some(rule),
                "`link.url` must start with `https://`, `http://` or `dingtalk://`",
            );
            return Err(());
        };
        // The authority ends at the first `/`, `?` or `#`; it must come before any template.
        let rest = url.get(scheme.len()..).unwrap_or_default();
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let first_template = rest.find("{{").or_else(|| rest.find("{%"));
        let authority = rest.get(..authority_end).unwrap_or_default();
        if authority.is_empty() || first_template.is_some_and(|at| at <= authority_end) {
            self.error_value(
                &yaml_path![i, "link", "url"],
                Some(rule),
                "`link.url` must write its host literally (templates only after the first `/`, \
                 `?` or `#`), so that no log line can choose where a click goes",
            );
            return Err(());
        }
        let template = |key: &str, source: &str| TemplateSpec {
            source: source.to_string(),
            file: self.file.to_path_buf(),
            node: self.spans.node(&yaml_path![i, "link", key]),
        };
        Ok(LinkSpec {
            title: template("title", &raw.title),
            url: template("url", url),
        })
    }

    /// `top:`: every name a named capture of the rule's patterns.
    pub(super) fn top(
        &mut self,
        i: usize,
        rule: &str,
        raw: Option<&[String]>,
        captures: &[String],
    ) -> Result<Vec<String>, ()> {
        let Some(names) = raw else {
            return Ok(Vec::new());
        };
        let mut ok = true;
        let mut top: Vec<String> = Vec::new();
        for (j, name) in names.iter().enumerate() {
            if captures.contains(name) {
                if !top.contains(name) {
                    top.push(name.clone());
                }
                continue;
            }
            ok = false;
            let known = if captures.is_empty() {
                "the rule's patterns have no named captures".to_string()
            } else {
                format!("named captures: {}", captures.join(", "))
            };
            let mut diagnostic = self.diagnostic_value(
                &yaml_path![i, "top", j],
                Some(rule),
                format!("`top` names `{name}`, which is not a named capture ({known})"),
            );
            if let Some(best) = did_you_mean(name, captures.iter().map(String::as_str)) {
                diagnostic = diagnostic.with_hint(format!("did you mean `{best}`?"));
            }
            self.diags.push(diagnostic);
        }
        if ok { Ok(top) } else { Err(()) }
    }

    /// `at:`: literal mobiles and user ids checked, literal people resolved through `people:`,
    /// templated entries kept for `render`. `Err` after reporting a bad literal entry.
    pub(super) fn at(
        &mut self,
        i: usize,
        rule: &str,
        raw: Option<&RawAt>,
    ) -> Result<(Mentions, Vec<MentionTemplate>), ()> {
        let Some(raw) = raw else {
            return Ok((Mentions::default(), Vec::new()));
        };
        let mut ok = true;
        let mut mentions = Mentions {
            all: raw.all,
            ..Mentions::default()
        };
        let mut templates = Vec::new();
        let lists = [
            (MentionKind::Mobile, &raw.mobiles),
            (MentionKind::UserId, &raw.user_ids),
            (MentionKind::Person, &raw.people),
        ];
        for (kind, entries) in lists {
            for (j, entry) in entries.iter().enumerate() {
                let text = entry.text();
                let path = yaml_path![i, "at", kind.key(), j];
                if text.contains("{{") || text.contains("{%") {
                    templates.push(MentionTemplate {
                        kind,
                        template: TemplateSpec {
                            source: text,
                            file: self.file.to_path_buf(),
                            node: self.spans.node(&path),
                        },
                    });
                    continue;
                }
                let problem = match kind {
                    MentionKind::Mobile if Mentions::is_mobile(&text) => {
                        mentions.mobiles.push(text);
                        None
                    }
                    MentionKind::Mobile => Some(format!(
                        "`{text}` is not a mobile number (digits, maybe `+86-`)"
                    )),
                    MentionKind::UserId if Mentions::is_user_id(&text) => {
                        mentions.user_ids.push(text);
                        None
                    }
                    MentionKind::UserId => Some(format!("`{text}` is not a DingTalk user id")),
                    MentionKind::Person => match self.config.people.get(&text) {
                        Some(person) => {
                            mentions.merge(person);
                            None
                        }
                        None => {
                            let known: Vec<&str> =
                                self.config.people.keys().map(String::as_str).collect();
                            let hint = did_you_mean(&text, known.iter().copied())
                                .map(|best| format!(" (did you mean `{best}`?)"))
                                .unwrap_or_default();
                            Some(format!(
                                "`{text}` is not defined under `people:` in the main config{hint}"
                            ))
                        }
                    },
                };
                if let Some(message) = problem {
                    ok = false;
                    self.error_value(&path, Some(rule), message);
                }
            }
        }
        if ok {
            Ok((mentions, templates))
        } else {
            Err(())
        }
    }
}

#[cfg(test)]
mod tests;
