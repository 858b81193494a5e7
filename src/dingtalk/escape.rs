//! Making log text inert in a message: a line from a log is attacker input (anyone who can make
//! a service log a user name can write ``a`[click](http://evil.example)` ``), and DingTalk renders
//! markdown, HTML (`<font>`) and shows `@…` as mentions. Every value that comes from a log goes
//! through one of these functions before it enters a message; the rule author's own template
//! text does not.
//!
//! The recipe (wave-2 reference §2.4), for DingTalk markdown ([`markdown`]):
//! 1. control bytes become visible (Unicode control pictures: NUL → ␀, ESC → ␛, BEL → ␇, …;
//!    other invisible format characters such as bidi overrides become `‹U+202E›`);
//! 2. `& < >` become entities: no HTML, no `<font>`, no autolink;
//! 3. `` \ ` * _ [ ] ~ | `` get a backslash anywhere: no emphasis, link, image, code or table;
//! 4. at the start of each line a block marker is taken apart: `#` → `\#`, a list marker `- `,
//!    `+ `, `1. ` → `\- `, `\+ `, `1\. `, a setext underline `===` → `\===`; leading spaces and
//!    tabs become `&nbsp;` (no indented code) and a blank line becomes `&nbsp;` (a value's
//!    newlines never start a new block);
//! 5. `@` is followed by a zero-width space, so that no text looks like a mention;
//! 6. a zero-width space also goes between a URL scheme's `:` and its `//` and between `www` and
//!    its dot, so that a client that turns bare addresses into links (DingTalk does in text
//!    messages) finds none in log text: `https://evil.example` reads as written and links nowhere.
//!
//! Only the characters that can form something are escaped, and `# + - . )` only where they
//! would start a block, so that IP addresses, dates and paths read as they are (DingTalk's
//! renderer is known to honour `\[ \] \_ \* \` \#`; how it shows other escapes is unverified).
//! Log text is never put in code spans or fences: DingTalk's phones show them as stray
//! characters and its PC client renders HTML inside them.
//!
//! For `msgtype: text` ([`plain`]) only steps 1, 5 and 6 apply: DingTalk shows the text literally.
//! Titles ([`title`]) lose their newlines and get step 1 only: they are plain notification text.
//! A value in a URL ([`url_component`]) is percent-encoded.

use std::fmt::Write as _;

use crate::event::Markup;

/// The zero-width space put after `@` so that log text never reads as a mention (and inside
/// `://` and `www.`, so that it never reads as an address to link).
pub const MENTION_BREAK: char = '\u{200B}';

/// True when a [`MENTION_BREAK`] goes right after the character that ends `before`, because
/// `after` follows it: a scheme's `:` before `//`, or a word `www` before `.`.
fn breaks_address(before: &str, after: &str) -> bool {
    if before.ends_with(':') {
        return after.starts_with("//");
    }
    if !after.starts_with('.') {
        return false;
    }
    let bytes = before.as_bytes();
    let n = bytes.len();
    n >= 3
        && bytes[n - 3..].eq_ignore_ascii_case(b"www")
        && (n == 3 || !bytes[n - 4].is_ascii_alphanumeric())
}

/// `value` made inert for `markup`.
pub fn value(value: &str, markup: Markup) -> String {
    match markup {
        Markup::Markdown => markdown(value),
        Markup::Plain => plain(value),
    }
}

/// `text` as DingTalk markdown that shows exactly `text` and forms nothing: see the module
/// documentation for the steps.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8 + 8);
    let multi_line = text.contains('\n');
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let rest = line.trim_start_matches([' ', '\t']);
        for c in line.chars().take_while(|c| matches!(c, ' ' | '\t')) {
            out.push_str(if c == '\t' {
                "&nbsp;&nbsp;&nbsp;&nbsp;"
            } else {
                "&nbsp;"
            });
        }
        if rest.is_empty() {
            if multi_line && line.is_empty() {
                out.push_str("&nbsp;");
            }
            continue;
        }
        let at_start = rest.len() == line.len();
        let marker_end = if at_start { block_marker(rest) } else { None };
        for (at, c) in rest.char_indices() {
            if marker_end == Some(at) {
                out.push('\\');
            }
            push_inline(&mut out, c);
            let next = at + c.len_utf8();
            if breaks_address(
                rest.get(..next).unwrap_or(""),
                rest.get(next..).unwrap_or(""),
            ) {
                out.push(MENTION_BREAK);
            }
        }
    }
    out
}

/// `text` rendered for a text message (by [`plain`] and its template), made inert markdown for
/// a message of that kind: its mention breaks are taken out first, so that they are not shown as
/// `‹U+200B›`, and the whole is escaped (the template's own text included: it was written for a
/// text message, where markdown shows literally).
pub fn plain_to_markdown(text: &str) -> String {
    markdown(&without_breaks(text))
}

/// `text` (an output of [`plain`] or [`markdown`]) without the breaks those put after `@`, in
/// `://` and in `www.`, for escaping it again in another mode, which puts them back: a break
/// that came from the log itself was made visible (`‹U+200B›`) and stays.
pub fn without_breaks(text: &str) -> String {
    text.replace("@\u{200B}", "@")
        .replace(":\u{200B}//", "://")
        .replace("\u{200B}.", ".")
}

/// `text` for a `msgtype: text` message: control bytes visible, mentions and addresses broken,
/// nothing else (DingTalk shows text messages literally).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (at, c) in text.char_indices() {
        match c {
            '@' => {
                out.push('@');
                out.push(MENTION_BREAK);
            }
            '\n' | '\t' => out.push(c),
            _ => push_visible(&mut out, c),
        }
        let next = at + c.len_utf8();
        if breaks_address(
            text.get(..next).unwrap_or(""),
            text.get(next..).unwrap_or(""),
        ) {
            out.push(MENTION_BREAK);
        }
    }
    out
}

/// `text` as a title (the notification preview and list entry): one line, control bytes
/// visible, not escaped (DingTalk shows titles as plain text).
pub fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.trim().chars() {
        if matches!(c, '\n' | '\r' | '\t') {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = c == ' ';
        push_visible(&mut out, c);
    }
    out
}

/// `text` percent-encoded as one URL component (everything but `A-Z a-z 0-9 - . _ ~`): a value
/// from a log put into a link cannot change the link's host, path or query structure.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _infallible = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `url` made safe as the destination of a markdown link `[text](url)`: the characters that
/// would end or break the destination are percent-encoded.
pub fn markdown_link_destination(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            ' ' => out.push_str("%20"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Where a backslash goes to take apart a block marker at the start of `line` (no leading
/// whitespace): the byte offset of the marker character, or `None`.
fn block_marker(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let first = *bytes.first()?;
    let after = |at: usize| bytes.get(at).is_none_or(|b| matches!(b, b' ' | b'\t'));
    match first {
        // ATX heading (any count: harmless when it would not be one).
        b'#' => Some(0),
        // A list item, or a thematic break / setext underline made of the character.
        b'-' | b'+' if after(1) || only(line, first) => Some(0),
        b'=' if only(line, b'=') => Some(0),
        b'0'..=b'9' => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            let marker = *bytes.get(digits)?;
            (digits <= 9 && matches!(marker, b'.' | b')') && after(digits + 1)).then_some(digits)
        }
        _ => None,
    }
}

/// True when `line` holds only `c` and spaces.
fn only(line: &str, c: u8) -> bool {
    line.bytes().all(|b| b == c || b == b' ' || b == b'\t')
}

/// One character of a markdown value, escaped.
fn push_inline(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' => {
            out.push('\\');
            out.push(c);
        }
        '@' => {
            out.push('@');
            out.push(MENTION_BREAK);
        }
        '\t' => out.push(' '),
        _ => push_visible(out, c),
    }
}

/// `c`, or its visible stand-in when it is a control or invisible format character.
fn push_visible(out: &mut String, c: char) {
    let code = u32::from(c);
    match code {
        // C0 controls: the Unicode control pictures ␀ … ␟.
        0x00..=0x1F => out.push(char::from_u32(0x2400 + code).unwrap_or('\u{FFFD}')),
        0x7F => out.push('\u{2421}'),
        // C1 controls, zero-width and bidi format characters: named, never silent.
        0x80..=0x9F
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x2069
        | 0xFEFF => {
            let _infallible = write!(out, "‹U+{code:04X}›");
        }
        _ => out.push(c),
    }
}

#[cfg(test)]
pub(crate) mod tests;
