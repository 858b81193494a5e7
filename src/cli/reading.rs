//! How an input reads its events, in a few words for `check`'s summary and `test`'s header:
//! `format cri, content json`, `encoding GBK`, or the journal with its filters
//! (`journal (units ssh.service; priority err; directory /srv/journal)`).

use crate::config::{Content, Decoding, Format, InputConfig, JournaldConfig};

/// How `input` reads, to follow a count: `, journal (…)` for a journald input, `, format
/// cri, encoding GBK` for files in another format or encoding, nothing for plain UTF-8 text.
pub fn suffix(input: &InputConfig) -> String {
    let text = match &input.journald {
        Some(journald) => journal(journald, &input.decoding),
        None => decoding_text(&input.decoding),
    };
    if text.is_empty() {
        text
    } else {
        format!(", {text}")
    }
}

/// `journal` with the filters of `journald` in parentheses, and how `MESSAGE` is decoded.
pub fn journal(journald: &JournaldConfig, decoding: &Decoding) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !journald.units.is_empty() {
        parts.push(format!("units {}", journald.units.join(", ")));
    }
    if !journald.identifiers.is_empty() {
        parts.push(format!("identifiers {}", journald.identifiers.join(", ")));
    }
    if let Some(priority) = &journald.priority {
        parts.push(format!("priority {priority}"));
    }
    if let Some(directory) = &journald.directory {
        parts.push(format!("directory {}", directory.display()));
    }
    let decoded = decoding_text(decoding);
    if !decoded.is_empty() {
        parts.push(format!("MESSAGE as {decoded}"));
    }
    if parts.is_empty() {
        "journal (all of it)".to_string()
    } else {
        format!("journal ({})", parts.join("; "))
    }
}

/// The non-default parts of `decoding`: `format cri, content json, encoding GBK`.
fn decoding_text(decoding: &Decoding) -> String {
    let mut parts: Vec<String> = Vec::new();
    if decoding.format != Format::Plain {
        parts.push(format!("format {}", format_name(decoding.format)));
    }
    if decoding.content == Content::Json {
        parts.push("content json".to_string());
    }
    if let Some(encoding) = decoding.encoding {
        parts.push(format!("encoding {}", encoding.name()));
    }
    parts.join(", ")
}

/// The `format:` name of `format`.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Plain => "plain",
        Format::Cri => "cri",
        Format::Docker => "docker",
        Format::Json => "json",
        Format::Auto => "auto",
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::cli::reading::journal;
    use crate::config::{Content, Decoding, Format, JournaldConfig};

    #[test]
    fn journal_inputs_name_their_filters() {
        let journald = JournaldConfig {
            units: vec!["ssh.service".into(), "cron.service".into()],
            identifiers: vec![],
            priority: Some("err".into()),
            directory: Some(PathBuf::from("/srv/journal")),
        };
        assert_eq!(
            journal(&journald, &Decoding::default()),
            "journal (units ssh.service, cron.service; priority err; directory /srv/journal)"
        );
        let json = Decoding {
            format: Format::Json,
            content: Content::Text,
            ..Decoding::default()
        };
        let all = JournaldConfig {
            units: vec![],
            identifiers: vec![],
            priority: None,
            directory: None,
        };
        assert_eq!(journal(&all, &Decoding::default()), "journal (all of it)");
        assert_eq!(journal(&all, &json), "journal (MESSAGE as format json)");
    }
}
