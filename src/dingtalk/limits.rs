//! What a message needs before DingTalk accepts and shows it as meant: a keyword in the visible
//! text, `@<mobile>`/`@<userId>` in the text for each mention, real line breaks in markdown, and a
//! whole body of at most 20,000 bytes.
//!
//! All of it happens in [`body`], in this order: cut the main text if needed (keeping a visible
//! "… truncated" marker), turn markdown's single newlines into hard breaks, then append the
//! mentions and the keyword as a last line, so that cutting can never remove them. The size is
//! measured on the serialized JSON itself (escapes included), and the cut point is found by
//! bisection over UTF-8 character boundaries (markdown: line ends first), so the result is the
//! longest text that fits. Pure: no I/O, no clock.

use crate::dingtalk::message::{FeedLink, Message, MessageError};

/// DingTalk refuses request bodies above this many bytes (errcode 460101).
pub const MAX_BODY_BYTES: usize = 20_000;

/// Ends a cut plain text.
const TEXT_MARKER: &str = "\n… truncated";
/// Ends a cut markdown text, as its own paragraph.
const MARKDOWN_MARKER: &str = "\n\n… truncated";

/// True when [`body`] would send `message` whole, without cutting its text (a caller that can
/// shorten the text more gracefully, like a summary that drops samples but keeps counts, asks
/// this first).
pub fn fits_uncut(robot_keywords: &[String], message: &Message) -> bool {
    if let Message::FeedCard { .. } = message {
        return message.to_json().len() <= MAX_BODY_BYTES;
    }
    finish(robot_keywords, message, None).to_json().len() <= MAX_BODY_BYTES
}

/// The exact JSON body that is POSTed for `message` to a robot with `robot_keywords`: keyword and
/// @-mention insertion, markdown line breaks and size cutting applied.
///
/// # Errors
/// - [`MessageError::Empty`] when a required field is empty;
/// - [`MessageError::TooLarge`] when the parts that are never cut (titles, buttons, URLs) alone
///   exceed [`MAX_BODY_BYTES`].
pub fn body(robot_keywords: &[String], message: &Message) -> Result<String, MessageError> {
    message.validate()?;
    if let Message::FeedCard { links } = message {
        return fit_feed_card(robot_keywords, links);
    }
    let full = finish(robot_keywords, message, None).to_json();
    if full.len() <= MAX_BODY_BYTES {
        return Ok(full);
    }
    let text = message.main_text();
    let cap = floor_char_boundary(text, MAX_BODY_BYTES);
    let render = |cut: usize| finish(robot_keywords, message, Some(cut)).to_json();
    let fits = |cut: &usize| render(*cut).len() <= MAX_BODY_BYTES;
    if is_markdown(message) {
        let line_ends: Vec<usize> = memchr::memchr_iter(b'\n', text.as_bytes())
            .take_while(|&at| at <= cap)
            .filter(|&at| at > 0)
            .collect();
        if let Some(cut) = largest(&line_ends, fits) {
            return Ok(render(cut));
        }
    }
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .take_while(|&at| at <= cap)
        .collect();
    match largest(&boundaries, fits) {
        Some(cut) => Ok(render(cut)),
        None => Err(MessageError::TooLarge {
            msgtype: message.msgtype(),
            bytes: render(0).len(),
            limit: MAX_BODY_BYTES,
        }),
    }
}

/// Turns markdown's single newlines into hard breaks (two trailing spaces), so that consecutive
/// lines are shown as written; blank lines and lines that already end in two spaces stay as they
/// are.
pub fn hard_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        if let Some(next) = lines.peek() {
            let content = line.trim_end_matches('\r');
            if !content.trim().is_empty() && !next.trim().is_empty() && !content.ends_with("  ") {
                if content.len() < line.len() {
                    // Keep a CRLF line's `\r` last.
                    out.truncate(out.len() - (line.len() - content.len()));
                    out.push_str("  ");
                    out.push_str(line.get(content.len()..).unwrap_or_default());
                } else {
                    out.push_str("  ");
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The last element of `sorted` for which `fits` holds, assuming it holds for a prefix.
fn largest(sorted: &[usize], fits: impl Fn(&usize) -> bool) -> Option<usize> {
    let n_fit = sorted.partition_point(fits);
    n_fit.checked_sub(1).and_then(|i| sorted.get(i).copied())
}

/// The largest character boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn is_markdown(message: &Message) -> bool {
    matches!(
        message,
        Message::Markdown { .. } | Message::ActionCard { .. }
    )
}

/// `message` as sent: main text cut at `cut` (with the marker), hard breaks for markdown, then
/// mentions and a keyword appended when missing.
fn finish(keywords: &[String], message: &Message, cut: Option<usize>) -> Message {
    let mut finished = message.clone();
    let markdown = is_markdown(message);
    let at = message.at().cloned().unwrap_or_default();
    let text = match &mut finished {
        Message::Text { content, .. } => content,
        Message::Link { text, .. }
        | Message::Markdown { text, .. }
        | Message::ActionCard { text, .. } => text,
        Message::FeedCard { .. } => return finished,
    };
    if let Some(cut) = cut {
        let kept = text.get(..cut).unwrap_or_default();
        *text = format!(
            "{kept}{}",
            if markdown {
                MARKDOWN_MARKER
            } else {
                TEXT_MARKER
            }
        );
    }
    if markdown {
        *text = hard_breaks(text);
    }
    let mut last_line: Vec<String> = Vec::new();
    if let Some(keyword) = missing_keyword(keywords, text) {
        last_line.push(keyword.to_owned());
    }
    for name in at.mobiles.iter().chain(&at.user_ids) {
        let mention = format!("@{name}");
        if !text.contains(&mention) && !last_line.contains(&mention) {
            last_line.push(mention);
        }
    }
    if !last_line.is_empty() {
        text.push_str(if markdown { "\n\n" } else { "\n" });
        text.push_str(&last_line.join(" "));
    }
    finished
}

/// The keyword to add when `text` contains none of `keywords` (the first one).
fn missing_keyword<'k>(keywords: &'k [String], text: &str) -> Option<&'k str> {
    let first = keywords.first()?;
    (!keywords.iter().any(|k| text.contains(k.as_str()))).then_some(first.as_str())
}

/// A feed card has no body text: the keyword goes into the first title, and links are dropped
/// from the end until the body fits.
fn fit_feed_card(keywords: &[String], links: &[FeedLink]) -> Result<String, MessageError> {
    let mut links = links.to_vec();
    let titles_have_keyword = |links: &[FeedLink]| {
        links
            .iter()
            .any(|l| missing_keyword(keywords, &l.title).is_none())
    };
    if !titles_have_keyword(&links) {
        if let (Some(first_link), Some(keyword)) = (links.first_mut(), keywords.first()) {
            first_link.title = format!("{keyword} {}", first_link.title);
        }
    }
    loop {
        let json = Message::feed_card(links.clone()).to_json();
        if json.len() <= MAX_BODY_BYTES {
            return Ok(json);
        }
        if links.len() <= 1 {
            return Err(MessageError::TooLarge {
                msgtype: "feedCard",
                bytes: json.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        links.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::dingtalk::limits::{MAX_BODY_BYTES, body, hard_breaks};
    use crate::dingtalk::message::{Buttons, FeedLink, Mentions, Message, MessageError};

    fn parsed(keywords: &[&str], message: &Message) -> Value {
        let keywords: Vec<String> = keywords.iter().map(|k| (*k).to_owned()).collect();
        let json = body(&keywords, message).unwrap();
        assert!(json.len() <= MAX_BODY_BYTES, "{} bytes", json.len());
        serde_json::from_str(&json).unwrap()
    }

    fn at(mobiles: &[&str], user_ids: &[&str]) -> Mentions {
        Mentions {
            mobiles: mobiles.iter().map(|m| (*m).to_owned()).collect(),
            user_ids: user_ids.iter().map(|m| (*m).to_owned()).collect(),
            all: false,
        }
    }

    #[test]
    fn mentions_are_written_into_the_text_once() {
        let message = Message::text(
            "disk full @13800000000",
            at(&["13800000000", "139"], &["u1"]),
        );
        let json = parsed(&[], &message);
        assert_eq!(json["text"]["content"], "disk full @13800000000\n@139 @u1");
        assert_eq!(json["at"]["atMobiles"][1], "139");
        let message = Message::markdown("t", "### disk", at(&["139"], &[]));
        let json = parsed(&[], &message);
        assert_eq!(json["markdown"]["text"], "### disk\n\n@139");
        let message = Message::action_card(
            "t",
            "x",
            Buttons::Single {
                title: "b".into(),
                url: "https://u.example".into(),
            },
        )
        .mention(at(&[], &["manager01"]))
        .unwrap();
        let json = parsed(&[], &message);
        assert_eq!(json["actionCard"]["text"], "x\n\n@manager01");
        assert_eq!(json["at"]["atUserIds"][0], "manager01");
    }

    #[test]
    fn the_first_keyword_is_added_to_the_visible_text_only_when_all_are_missing() {
        let json = parsed(
            &["alert", "告警"],
            &Message::text("disk full", Mentions::default()),
        );
        assert_eq!(json["text"]["content"], "disk full\nalert");
        let json = parsed(
            &["alert", "告警"],
            &Message::text("磁盘告警", Mentions::default()),
        );
        assert_eq!(json["text"]["content"], "磁盘告警");
        // The title does not count: the body text gets the keyword.
        let json = parsed(
            &["alert"],
            &Message::markdown("alert", "disk full", at(&["139"], &[])),
        );
        assert_eq!(json["markdown"]["text"], "disk full\n\nalert @139");
        let json = parsed(
            &["alert"],
            &Message::link("alert", "disk", "https://g.example", ""),
        );
        assert_eq!(json["link"]["text"], "disk\nalert");
        let feed = Message::feed_card(vec![FeedLink {
            title: "disk".into(),
            message_url: "https://g.example".into(),
            pic_url: "https://g.example/p.png".into(),
        }]);
        let json = parsed(&["alert"], &feed);
        assert_eq!(json["feedCard"]["links"][0]["title"], "alert disk");
    }

    #[test]
    fn markdown_single_newlines_become_hard_breaks() {
        assert_eq!(
            hard_breaks("line 1\nline 2\n\n- a\n- b  \n- c\n"),
            "line 1  \nline 2\n\n- a  \n- b  \n- c\n"
        );
        assert_eq!(hard_breaks("a\r\nb"), "a  \r\nb");
        // Idempotent: a body can be rebuilt from an already processed text.
        let once = hard_breaks("x\ny\nz");
        assert_eq!(hard_breaks(&once), once);
        let json = parsed(&[], &Message::markdown("t", "a\nb", Mentions::default()));
        assert_eq!(json["markdown"]["text"], "a  \nb");
        // Plain text keeps its newlines as they are.
        let json = parsed(&[], &Message::text("a\nb", Mentions::default()));
        assert_eq!(json["text"]["content"], "a\nb");
    }

    #[test]
    fn long_text_with_cjk_and_emoji_is_cut_at_a_char_boundary_with_a_marker() {
        // 3-byte CJK, 4-byte emoji and a 1-byte letter: every cut offset mod 8 occurs.
        let original = "告警🔥a".repeat(4_000);
        let message = Message::text(original.clone(), at(&["139"], &[]));
        let json = parsed(&["kw"], &message);
        let content = json["text"]["content"].as_str().unwrap();
        let (kept, tail) = content.split_once("\n… truncated").unwrap();
        assert!(original.starts_with(kept));
        assert!(kept.len() > 18_000, "kept only {}", kept.len());
        assert_eq!(tail, "\nkw @139", "the keyword and mention survive the cut");
        for n in 0..8 {
            let original = format!("{}{}", "a".repeat(n), "🔥告".repeat(5_000));
            let json = body(&[], &Message::text(original.clone(), Mentions::default())).unwrap();
            assert!(json.len() <= MAX_BODY_BYTES);
            let value: Value = serde_json::from_str(&json).unwrap();
            let content = value["text"]["content"].as_str().unwrap();
            let kept = content.strip_suffix("\n… truncated").unwrap();
            assert!(original.starts_with(kept));
        }
    }

    #[test]
    fn escapes_count_toward_the_size() {
        // Each `"` becomes two bytes in JSON: a cut that counted characters would overflow.
        let message = Message::text("\"".repeat(15_000), Mentions::default());
        let json = body(&[], &message).unwrap();
        assert!(json.len() <= MAX_BODY_BYTES && json.len() > MAX_BODY_BYTES - 10);
    }

    #[test]
    fn long_markdown_is_cut_at_a_line_end() {
        let original: String = (0..2_000)
            .map(|i| format!("- 第{i}行 🙂 error\n"))
            .collect();
        let json = parsed(
            &[],
            &Message::markdown("t", original.clone(), Mentions::default()),
        );
        let text = json["markdown"]["text"].as_str().unwrap();
        let kept = text.strip_suffix("\n\n… truncated").unwrap();
        let restored = kept.replace("  \n", "\n");
        assert!(original.starts_with(&format!("{restored}\n")), "{restored}");
        assert!(restored.ends_with("error"));
    }

    #[test]
    fn a_single_huge_markdown_line_falls_back_to_a_char_cut() {
        let json = parsed(
            &[],
            &Message::markdown("t", "🙂".repeat(9_000), Mentions::default()),
        );
        assert!(
            json["markdown"]["text"]
                .as_str()
                .unwrap()
                .ends_with("🙂\n\n… truncated")
        );
    }

    #[test]
    fn oversized_parts_that_cannot_be_cut_are_an_error() {
        let message = Message::markdown("t".repeat(25_000), "x", Mentions::default());
        assert!(matches!(
            body(&[], &message),
            Err(MessageError::TooLarge { .. })
        ));
        let links = (0..400)
            .map(|i| FeedLink {
                title: format!("item {i} {}", "x".repeat(50)),
                message_url: "https://g.example/x".into(),
                pic_url: String::new(),
            })
            .collect();
        let json = parsed(&[], &Message::feed_card(links));
        assert!(json["feedCard"]["links"].as_array().unwrap().len() < 400);
    }
}
