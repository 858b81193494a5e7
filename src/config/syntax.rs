//! Where a YAML syntax error really is (issue 12). The YAML parser reports the place it gave up,
//! which for the two commonest mistakes is not where the mistake is:
//!
//! - a tab: `saphyr` stops at the end of the scalar before it (`input: web⏎⇥match: x` is
//!   reported at the end of `web`, 2:10, while the tab is at 3:1). The error is moved to the
//!   tab itself: the first tab on the reported line, else the first one after it.
//! - indentation: a key indented deeper than its siblings is read as the continuation of the
//!   value above it and reported at its `:`, one indented less at its first character, both
//!   with a message about "mapping values" or "expected key". The error is moved to the first
//!   character of the misindented line and says how deep it is and how deep the key before it.
//!
//! Pure: text in, position and words out.

use crate::config::span::Pos;

/// The parser's messages that mean "this line is not indented like its neighbours".
const INDENTATION_MESSAGES: &[&str] = &[
    "mapping values are not allowed",
    "did not find expected key",
    "did not find expected '-' indicator",
];

/// A syntax error's position and message, corrected; `hint` says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Where the mistake is.
    pub pos: Pos,
    /// The parser's message.
    pub message: String,
    /// What to do about it, when known.
    pub hint: Option<String>,
}

/// Corrects the position of the parser's error `message` at `pos` in `text`.
pub fn locate(text: &str, pos: Pos, message: &str) -> Located {
    let lines: Vec<&str> = text.split('\n').collect();
    let unchanged = Located {
        pos,
        message: message.to_string(),
        hint: None,
    };
    // A tab where YAML wants a space: "found a tab", "tabs disallowed", and a `:` "followed by
    // a valid YAML whitespace" when that was a tab.
    let tab_on_line = pos
        .line
        .checked_sub(1)
        .and_then(|i| lines.get(i))
        .is_some_and(|line| line.contains('\t'));
    if message.contains("tab") || (message.contains("whitespace") && tab_on_line) {
        return match find_tab(&lines, pos) {
            Some(tab) => Located {
                pos: tab,
                message: "a tab character where YAML needs spaces".to_string(),
                hint: Some("indent with spaces only".to_string()),
            },
            None => unchanged,
        };
    }
    if !INDENTATION_MESSAGES.iter().any(|m| message.contains(m)) {
        return unchanged;
    }
    let Some(line) = pos.line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return unchanged;
    };
    let indent = indentation(line);
    let Some((above_no, above_indent, above_key)) = key_above(&lines, pos.line) else {
        return unchanged;
    };
    if indent == above_indent {
        return unchanged;
    }
    let key = line
        .trim_start()
        .split(':')
        .next()
        .unwrap_or_default()
        .trim();
    Located {
        pos: Pos {
            line: pos.line,
            column: line.chars().take_while(|c| *c == ' ').count() + 1,
        },
        message: format!(
            "`{key}` starts at column {} but `{above_key}` on line {above_no} at column {}",
            indent + 1,
            above_indent + 1
        ),
        hint: Some(
            "keys of one mapping line up; a nested mapping is indented under a key that ends \
             with `:`"
                .to_string(),
        ),
    }
}

/// The first tab on the line of `pos`, else the first one after `pos`.
fn find_tab(lines: &[&str], pos: Pos) -> Option<Pos> {
    let first = pos.line.max(1);
    let on_line = lines
        .get(first - 1)
        .and_then(|line| line.chars().position(|c| c == '\t'));
    if let Some(column) = on_line {
        return Some(Pos {
            line: first,
            column: column + 1,
        });
    }
    lines.iter().enumerate().skip(first).find_map(|(i, line)| {
        line.chars().position(|c| c == '\t').map(|column| Pos {
            line: i + 1,
            column: column + 1,
        })
    })
}

/// Spaces before a line's content.
fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ').count()
}

/// The nearest line above `line_no` (1-based) holding a key: its number, the indentation of its
/// key (after a `- ` list marker) and the key.
fn key_above(lines: &[&str], line_no: usize) -> Option<(usize, usize, String)> {
    (1..line_no).rev().find_map(|no| {
        let line = lines.get(no - 1)?;
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            return None;
        }
        let mut indent = indentation(line);
        let mut rest = content;
        while let Some(after) = rest.strip_prefix("- ") {
            indent += 2 + indentation(after);
            rest = after.trim_start();
        }
        let key = rest.split(':').next()?.trim().to_string();
        rest.contains(':').then_some((no, indent, key))
    })
}

#[cfg(test)]
mod tests {
    use crate::config::span::{Pos, Spans};

    fn error(text: &str) -> (Pos, String, Option<String>) {
        let err = Spans::parse(text).unwrap_err();
        (err.pos, err.message, err.hint)
    }

    #[test]
    fn a_tab_is_reported_where_it_is() {
        let (pos, message, hint) = error("- name: a\n  input: web\n\tmatch: x\n");
        assert_eq!(pos, Pos { line: 3, column: 1 });
        assert!(message.contains("tab"), "{message}");
        assert!(hint.is_some());
        let (pos, ..) = error("inputs:\n  web:\n\tpaths: x\n");
        assert_eq!(pos, Pos { line: 3, column: 1 });
        let (pos, ..) = error("- name: a\n  input:\tweb\n");
        assert_eq!(pos, Pos { line: 2, column: 9 });
    }

    #[test]
    fn a_misindented_key_is_reported_at_its_start_with_both_depths() {
        let (pos, message, _) = error("- name: a\n  input: web\n   match: x\n  robot: ops\n");
        assert_eq!(pos, Pos { line: 3, column: 4 });
        assert_eq!(
            message,
            "`match` starts at column 4 but `input` on line 2 at column 3"
        );
        let (pos, message, _) = error("- name: a\n  input: web\n match: x\n  robot: ops\n");
        assert_eq!(pos, Pos { line: 3, column: 2 });
        assert!(message.contains("column 2 but"), "{message}");
        let (pos, message, _) = error("- name: a\n    input: web\n");
        assert_eq!(pos, Pos { line: 2, column: 5 });
        assert!(
            message.contains("`input` starts at column 5 but `name` on line 1 at column 3"),
            "{message}"
        );
    }
}
