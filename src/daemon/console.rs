//! The `console` robot's view of a message: what a person in the group would read — the title,
//! who is mentioned, the text with DingTalk's markdown made readable on a terminal (escapes and
//! entities resolved, headings and bold shown as bold), and the buttons — in colour when stdout
//! is a terminal (and `NO_COLOR` is not set). The `stdout` robot prints the exact JSON body
//! instead, for scripts.
//!
//! Pure: [`show`] returns the text; `deliver` prints it.

use crate::dingtalk::escape::MENTION_BREAK;
use crate::dingtalk::{Buttons, Message};

const BOLD: &str = "\u{1b}[1m";
const TITLE: &str = "\u{1b}[1;33m";
const DIM: &str = "\u{1b}[2m";
const RESET: &str = "\u{1b}[0m";

/// `message` as a person reads it, ending with a blank line; ANSI colours when `colour`.
pub fn show(message: &Message, colour: bool) -> String {
    let paint = |style: &str, text: &str| {
        if colour {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let text = message.main_text();
    // The title, or a text message's first line; the text repeats it as its first line.
    let first_line = text.split('\n').next().unwrap_or_default();
    let title = message
        .title()
        .unwrap_or_else(|| first_line.trim_start_matches('#').trim());
    let rule = "━".repeat(3);
    if !title.is_empty() {
        out.push_str(&paint(TITLE, &format!("{rule} {} {rule}", inert(title))));
        out.push('\n');
    }
    let repeats_title = readable(first_line.trim_start_matches('#').trim(), None) == title
        || first_line.replace(MENTION_BREAK, "") == title.replace(MENTION_BREAK, "");
    let body = if repeats_title {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        text
    };
    if let Some(at) = message.at().filter(|at| !at.is_empty()) {
        let mut who: Vec<String> = at
            .mobiles
            .iter()
            .chain(&at.user_ids)
            .map(|w| format!("@{w}"))
            .collect();
        if at.all {
            who.push("@all".to_string());
        }
        out.push_str(&paint(DIM, &inert(&format!("at: {}", who.join(" ")))));
        out.push('\n');
    }
    let markdown = matches!(
        message,
        Message::Markdown { .. } | Message::ActionCard { .. }
    );
    // Leading blank lines are skipped; runs of blank lines (paragraph breaks) print as one.
    let mut blank = true;
    for line in body.trim_end().split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        blank = false;
        if !markdown {
            out.push_str(&inert(&line.replace(MENTION_BREAK, "")));
            out.push('\n');
            continue;
        }
        match line.trim_start_matches('#').strip_prefix(' ') {
            Some(heading) if line.starts_with('#') => {
                out.push_str(&paint(BOLD, &readable(heading, None)));
            }
            _ => out.push_str(&readable(line, colour.then_some(BOLD))),
        }
        out.push('\n');
    }
    if let Message::ActionCard { buttons, .. } = message {
        let buttons: Vec<(&str, &str)> = match buttons {
            Buttons::Single { title, url } => vec![(title, url)],
            Buttons::Several(buttons) => buttons
                .iter()
                .map(|b| (b.title.as_str(), b.url.as_str()))
                .collect(),
        };
        for (title, url) in buttons {
            out.push_str(&format!(
                "[ {} ] {}\n",
                inert(title),
                paint(DIM, &inert(url))
            ));
        }
    }
    out.push('\n');
    out
}

/// `text` with control characters shown as Unicode control pictures, so that nothing in a
/// message (a value printed with `| raw` included) can drive the terminal: only the console's
/// own colours are escape sequences.
fn inert(text: &str) -> String {
    text.chars()
        .map(|c| match u32::from(c) {
            code @ 0x00..=0x1F if c != '\t' => char::from_u32(0x2400 + code).unwrap_or('\u{FFFD}'),
            0x7F => '\u{2421}',
            _ => c,
        })
        .collect()
}

/// One markdown line as text: backslash escapes and entities resolved, the zero-width space
/// after `@` dropped, `**bold**` shown with `bold` (or without the stars when `None`).
fn readable(line: &str, bold: Option<&str>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_bold = false;
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some((_, next)) if next.is_ascii_punctuation() => {
                    out.push(*next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            '*' if line.get(at..).is_some_and(|rest| rest.starts_with("**")) => {
                chars.next();
                in_bold = !in_bold;
                if let Some(style) = bold {
                    out.push_str(if in_bold { style } else { RESET });
                }
            }
            '&' => {
                let rest = line.get(at..).unwrap_or_default();
                let entity = [
                    ("&nbsp;", ' '),
                    ("&amp;", '&'),
                    ("&lt;", '<'),
                    ("&gt;", '>'),
                ]
                .into_iter()
                .find(|(name, _)| rest.starts_with(name));
                match entity {
                    Some((name, text)) => {
                        out.push(text);
                        for _ in 1..name.chars().count() {
                            chars.next();
                        }
                    }
                    None => out.push('&'),
                }
            }
            MENTION_BREAK => {}
            _ => out.push_str(&inert(c.encode_utf8(&mut [0; 4]))),
        }
    }
    if in_bold && bold.is_some() {
        out.push_str(RESET);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::daemon::console::show;
    use crate::dingtalk::escape;
    use crate::dingtalk::{Buttons, Mentions, Message};

    #[test]
    fn a_message_reads_as_its_reader_sees_it() {
        let line = escape::markdown("Failed password for a`[click](http://evil.example)` & <b>");
        let message = Message::markdown(
            "sshd on web-1",
            format!("#### sshd on web-1\n\n**sshd** · 警告\n\n- {line}\n"),
            Mentions {
                mobiles: vec!["13800000000".into()],
                ..Mentions::default()
            },
        );
        assert_eq!(
            show(&message, false),
            "━━━ sshd on web-1 ━━━\nat: @13800000000\nsshd · 警告\n\n\
             - Failed password for a`[click](http://evil.example)` & <b>\n\n"
        );
        let coloured = show(&message, true);
        assert!(
            coloured.contains("\u{1b}[1msshd\u{1b}[0m · 警告"),
            "{coloured:?}"
        );
        let card = Message::action_card(
            "t",
            "text",
            Buttons::Single {
                title: "Runbook".into(),
                url: "https://wiki.example/r".into(),
            },
        );
        assert!(show(&card, false).ends_with("text\n[ Runbook ] https://wiki.example/r\n\n"));
        let raw = Message::markdown("t", "#### t\n\n\u{1b}[2J gone", Mentions::default());
        assert_eq!(
            show(&raw, false),
            "━━━ t ━━━\n␛[2J gone\n\n",
            "no terminal control"
        );
        let text = Message::text(
            format!("disk full on web-1\n\n{}\n", escape::plain("@all look")),
            Mentions::default(),
        );
        assert_eq!(
            show(&text, false),
            "━━━ disk full on web-1 ━━━\n@all look\n\n"
        );
    }
}
