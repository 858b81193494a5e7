//! The escaping proven with a CommonMark parser: hostile log lines form nothing, and read as
//! they were written.

use pulldown_cmark::{Event, Options, Parser, Tag};

use crate::dingtalk::escape::{
    MENTION_BREAK, markdown, markdown_link_destination, plain, plain_to_markdown, title,
    url_component,
};

/// Lines an attacker could get into a log (user names, paths, request lines).
pub(crate) const HOSTILE: &[&str] = &[
    "a`[click](http://evil.example)`",
    "[click](http://evil.example)",
    "![img](http://evil.example/x.png)",
    "[a](javascript:alert(1))",
    "<http://evil.example>",
    "# heading",
    "###### six",
    "#hash",
    "**bold** and __bold__ and *it* _it_ ***both***",
    "> quote",
    "- item",
    "* item",
    "+ item",
    "1. item",
    "1) item",
    "123456789. item",
    "- [ ] task",
    "<font color=red>red</font>",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<!-- comment -->",
    "&lt;b&gt; &amp; &#60;i&#62;",
    "@13800000000 please @all",
    "line1\n# heading\n- item\n\n> quote\n    code\n```\nfence\n```",
    "title\n===",
    "title\n---",
    "***",
    "___",
    "- - -",
    "| a | b |\n|---|---|\n| c | d |",
    "~~strike~~",
    "~~~\ncode\n~~~",
    "[foo]: http://evil.example\n\n[foo]",
    "[^1]\n\n[^1]: note",
    "[[wiki]]",
    "\u{0}\u{1b}[31mred\u{7}\u{8} done",
    "\u{202e}gnp.exe",
    "\tat com.example.Foo(Foo.java:1)",
    "    indented code",
    "trailing backslash\\",
    "Failed password for invalid user a`[click](http://evil.example)` from 203.0.113.9 port 22",
    "GET /<script>alert(1)</script> HTTP/1.1",
];

/// The parser's view, with every extension DingTalk could plausibly render switched on.
fn parse(text: &str) -> Vec<Event<'_>> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM
        | Options::ENABLE_WIKILINKS;
    Parser::new_ext(text, options).collect()
}

/// The structure `text` parses into: one name per start tag or non-text event.
pub(crate) fn constructs(text: &str) -> Vec<String> {
    parse(text)
        .into_iter()
        .filter_map(|event| match event {
            Event::Start(tag) => Some(match tag {
                Tag::Paragraph => "Paragraph".to_string(),
                Tag::Heading { .. } => "Heading".to_string(),
                Tag::BlockQuote(_) => "BlockQuote".to_string(),
                Tag::CodeBlock(_) => "CodeBlock".to_string(),
                Tag::HtmlBlock => "HtmlBlock".to_string(),
                Tag::List(_) => "List".to_string(),
                Tag::Item => "Item".to_string(),
                Tag::Emphasis => "Emphasis".to_string(),
                Tag::Strong => "Strong".to_string(),
                Tag::Strikethrough => "Strikethrough".to_string(),
                Tag::Link { .. } => "Link".to_string(),
                Tag::Image { .. } => "Image".to_string(),
                Tag::Table(_) => "Table".to_string(),
                other => format!("{other:?}"),
            }),
            Event::Html(_) | Event::InlineHtml(_) => Some("Html".to_string()),
            Event::Code(_) => Some("Code".to_string()),
            Event::FootnoteReference(_) => Some("Footnote".to_string()),
            Event::TaskListMarker(_) => Some("Task".to_string()),
            Event::Rule => Some("Rule".to_string()),
            _ => None,
        })
        .collect()
}

/// The text a reader sees: text events, breaks as newlines, entities decoded; the zero-width
/// space after `@` and trailing spaces dropped, non-breaking spaces read as spaces.
pub(crate) fn visible(text: &str) -> String {
    let mut out = String::new();
    for event in parse(text) {
        match event {
            Event::Text(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            _ => {}
        }
    }
    normalise(&out.replace(MENTION_BREAK, "").replace('\u{a0}', " "))
}

fn normalise(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a reader should see for log text `line`: tabs as spaces (four at a line start), control
/// bytes as pictures, blank lines as a space.
fn expected(line: &str) -> String {
    let lines: Vec<String> = line
        .split('\n')
        .map(|l| {
            let rest = l.trim_start_matches([' ', '\t']);
            let lead: String = l
                .chars()
                .take_while(|c| matches!(c, ' ' | '\t'))
                .map(|c| if c == '\t' { "    " } else { " " })
                .collect();
            let body: String = rest
                .chars()
                .map(|c| match u32::from(c) {
                    0x00..=0x1F if c != '\t' => char::from_u32(0x2400 + u32::from(c)).unwrap(),
                    _ if c == '\t' => ' ',
                    _ => c,
                })
                .collect::<String>()
                .replace('\u{202e}', "‹U+202E›");
            format!("{lead}{body}")
        })
        .collect();
    normalise(&lines.join("\n"))
}

#[test]
fn hostile_lines_form_nothing_and_read_as_written() {
    for line in HOSTILE {
        let escaped = markdown(line);
        let found = constructs(&escaped);
        assert!(
            found.iter().all(|c| c == "Paragraph"),
            "{line:?} → {escaped:?} formed {found:?}"
        );
        assert!(found.len() <= 1, "one block only: {line:?} → {found:?}");
        assert_eq!(visible(&escaped), expected(line), "{line:?} → {escaped:?}");
        assert!(!escaped.contains('@') || escaped.contains(MENTION_BREAK));
    }
}

#[test]
fn inside_a_template_the_authors_markdown_still_renders() {
    let template = |value: &str| {
        format!(
            "#### Alert on **web-1**\n\n> {value}\n\n- sample: {value}\n- [runbook](https://wiki.example/r)\n"
        )
    };
    let benign = constructs(&template("x"));
    assert_eq!(
        benign,
        [
            "Heading",
            "Strong",
            "BlockQuote",
            "Paragraph",
            "List",
            "Item",
            "Item",
            "Link"
        ]
    );
    for line in HOSTILE {
        let message = template(&markdown(line));
        assert_eq!(constructs(&message), benign, "{line:?}:\n{message}");
    }
}

#[test]
fn ordinary_text_is_left_alone() {
    for text in [
        "203.0.113.9",
        "2026-11-25 08:01:02,345",
        "/var/log/nginx/access.log",
        "GET /api/v1/orders?id=42 HTTP/1.1",
        "java.lang.OutOfMemoryError: Java heap space (pid 4242)",
        "-1 is not a valid count",
        "10.0.0.1 - - [25/Nov/2026]",
    ] {
        let escaped = markdown(text);
        assert_eq!(visible(&escaped), text);
        assert!(
            !escaped.contains("\\.") && !escaped.contains("\\-") && !escaped.contains("\\("),
            "no escape where nothing could form: {escaped}"
        );
    }
    assert_eq!(markdown("10. item"), "10\\. item");
    assert_eq!(markdown("- item"), "\\- item");
    assert_eq!(markdown("a\n\nb"), "a\n&nbsp;\nb");
}

#[test]
fn control_bytes_are_visible_everywhere() {
    let line = "NUL\u{0} ESC\u{1b} BEL\u{7} BS\u{8} DEL\u{7f} CR\r NEL\u{85}";
    let want = "NUL␀ ESC␛ BEL␇ BS␈ DEL␡ CR␍ NEL‹U+0085›";
    assert_eq!(markdown(line), want);
    assert_eq!(plain(line), want);
    assert_eq!(title("a\u{1b}[2J\u{7}b"), "a␛[2J␇b");
}

#[test]
fn a_text_rendering_shown_in_markdown_keeps_one_invisible_mention_break() {
    let text = plain("app@orders [x](y)");
    let md = plain_to_markdown(&text);
    assert_eq!(md, format!("app@{MENTION_BREAK}orders \\[x\\](y)"));
    assert!(!md.contains('‹'));
}

#[test]
fn text_messages_break_only_mentions_and_titles_are_one_line() {
    assert_eq!(
        plain("**x** @138 [a](b)\nnext"),
        format!("**x** @{MENTION_BREAK}138 [a](b)\nnext")
    );
    assert_eq!(title(" a\nb\r\n\tc [d](e) "), "a b c [d](e)");
}

#[test]
fn values_in_urls_are_percent_encoded() {
    assert_eq!(
        url_component("a b/c?d=e&f#g@h"),
        "a%20b%2Fc%3Fd%3De%26f%23g%40h"
    );
    assert_eq!(url_component("日"), "%E6%97%A5");
    assert_eq!(url_component("web-1.example_~"), "web-1.example_~");
    assert_eq!(
        markdown_link_destination("https://x.example/a (b)"),
        "https://x.example/a%20%28b%29"
    );
}

#[test]
fn addresses_in_log_text_are_broken_so_that_no_client_links_them() {
    let b = MENTION_BREAK;
    for (line, want) in [
        (
            "see https://evil.example/login",
            format!("see https:{b}//evil.example/login"),
        ),
        ("HTTP://X.example", format!("HTTP:{b}//X.example")),
        (
            "go to www.evil.example now",
            format!("go to www{b}.evil.example now"),
        ),
        ("WWW.x", format!("WWW{b}.x")),
        (
            "upstream: \"http://10.0.0.1:8080/\"",
            format!("upstream: \"http:{b}//10.0.0.1:8080/\""),
        ),
    ] {
        assert_eq!(plain(line), want, "{line:?}");
        assert_eq!(markdown(line), want, "{line:?}");
        // Shown in markdown after a text rendering: still one break, never a visible ‹U+200B›.
        assert_eq!(plain_to_markdown(&plain(line)), markdown(line));
    }
    // Words that merely end in www, times and ports are left alone.
    for text in [
        "awww.x",
        "12:30:45",
        "host:8080/path",
        "a: //comment",
        "www",
    ] {
        assert_eq!(plain(text), text);
        assert_eq!(markdown(text), text);
    }
}
