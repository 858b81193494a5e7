//! `Spans`: where each key and value of a YAML document stands (line and column), so that
//! problems found after parsing (an unknown robot, a bad regex, a duplicate name) can still point
//! at the exact place in the file.
//!
//! serde gives us typed values but forgets positions once parsing succeeds; this index is built
//! from the `saphyr-parser` event stream of the same text and looked up by path
//! (`inputs` → `nginx` → `paths` → `0`). Aliases and merge keys are not followed: a path through
//! them simply has no entry, and callers fall back to the nearest parent that has one.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// One step of a path into a YAML document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

impl From<&str> for Seg {
    fn from(key: &str) -> Seg {
        Seg::Key(key.to_string())
    }
}

impl From<usize> for Seg {
    fn from(index: usize) -> Seg {
        Seg::Index(index)
    }
}

/// A 1-based line and column (columns count characters, not bytes); line 0 means unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// How a scalar was written, which decides where its first character stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Unquoted, or a block scalar (`|`, `>`).
    Plain,
    /// `'…'` or `"…"`: the text starts one column after the value's position.
    Quoted,
    /// Not a scalar (a mapping or sequence).
    Collection,
}

/// Positions of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// Where the node's key stands (mapping entries only).
    pub key: Option<Pos>,
    /// Where the node's value starts.
    pub value: Pos,
    /// How the value was written.
    pub style: Style,
}

/// A YAML syntax error, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the mistake is (`config::syntax` corrects the parser's position for tabs and
    /// indentation).
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when known.
    pub hint: Option<String>,
}

/// The position index of one YAML document (the first, if the text holds several).
#[derive(Clone, Debug, Default)]
pub struct Spans {
    nodes: HashMap<Vec<Seg>, Node>,
}

enum Frame {
    Map { pending_key: Option<(String, Pos)> },
    Seq { next: usize },
}

impl Spans {
    /// Builds the index of `text`.
    ///
    /// # Errors
    /// The first YAML syntax error, with its position.
    pub fn parse(text: &str) -> Result<Spans, SyntaxError> {
        let mut spans = Spans::default();
        let mut path: Vec<Seg> = Vec::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| {
                let pos = Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                };
                let located = crate::config::syntax::locate(text, pos, e.info());
                SyntaxError {
                    pos: located.pos,
                    message: located.message,
                    hint: located.hint,
                }
            })?;
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                }
                Event::Scalar(value, style, ..) if documents == 1 => {
                    let style = match style {
                        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                        _ => Style::Plain,
                    };
                    if let Some(Frame::Map { pending_key }) = frames.last_mut() {
                        if pending_key.is_none() {
                            *pending_key = Some((value.into_owned(), pos));
                            continue;
                        }
                    }
                    spans.enter_value(&mut path, &mut frames, pos, style);
                    spans.leave_value(&mut path, &mut frames);
                }
                Event::Alias(_) if documents == 1 => {
                    spans.enter_value(&mut path, &mut frames, pos, Style::Plain);
                    spans.leave_value(&mut path, &mut frames);
                }
                Event::MappingStart(..) if documents == 1 => {
                    spans.enter_value(&mut path, &mut frames, pos, Style::Collection);
                    frames.push(Frame::Map { pending_key: None });
                }
                Event::SequenceStart(..) if documents == 1 => {
                    spans.enter_value(&mut path, &mut frames, pos, Style::Collection);
                    frames.push(Frame::Seq { next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd if documents == 1 => {
                    frames.pop();
                    spans.leave_value(&mut path, &mut frames);
                }
                _ => {}
            }
        }
        Ok(spans)
    }

    /// Records a value starting at `pos` under the current frame, and extends `path` to it.
    fn enter_value(&mut self, path: &mut Vec<Seg>, frames: &mut [Frame], pos: Pos, style: Style) {
        let mut key_pos = None;
        match frames.last_mut() {
            Some(Frame::Map { pending_key }) => {
                // A complex (non-scalar) key has no pending scalar key; index it under "".
                let (key, at) = pending_key.clone().unwrap_or_default();
                key_pos = if at.line == 0 { None } else { Some(at) };
                path.push(Seg::Key(key));
            }
            Some(Frame::Seq { next }) => {
                path.push(Seg::Index(*next));
                *next += 1;
            }
            None => {}
        }
        self.nodes.insert(
            path.clone(),
            Node {
                key: key_pos,
                value: pos,
                style,
            },
        );
    }

    /// Closes the value just recorded: the parent map waits for its next key.
    fn leave_value(&mut self, path: &mut Vec<Seg>, frames: &mut [Frame]) {
        if frames.is_empty() {
            return;
        }
        path.pop();
        if let Some(Frame::Map { pending_key }) = frames.last_mut() {
            *pending_key = None;
        }
    }

    /// The node at `path`, if the document has one there.
    pub fn node(&self, path: &[Seg]) -> Option<Node> {
        self.nodes.get(path).copied()
    }

    /// The position of the key at `path`, else of its value, else of the nearest ancestor that
    /// has one; line 1, column 1 when nothing matches.
    pub fn key_or_value(&self, path: &[Seg]) -> Pos {
        self.nearest(path, |node| node.key.unwrap_or(node.value))
    }

    /// The position of the value at `path`, else of the nearest ancestor.
    pub fn value(&self, path: &[Seg]) -> Pos {
        self.nearest(path, |node| node.value)
    }

    /// The position of character `offset` of a single-line scalar at `path` (for pointing inside a
    /// regex). Exact for plain and quoted scalars without escapes; otherwise the value's start.
    pub fn inside_value(&self, path: &[Seg], offset: usize) -> Pos {
        match self.node(path) {
            Some(Node {
                value,
                style: Style::Plain,
                ..
            }) => Pos {
                line: value.line,
                column: value.column + offset,
            },
            Some(Node {
                value,
                style: Style::Quoted,
                ..
            }) => Pos {
                line: value.line,
                column: value.column + 1 + offset,
            },
            _ => self.value(path),
        }
    }

    fn nearest(&self, path: &[Seg], pick: impl Fn(&Node) -> Pos) -> Pos {
        let mut len = path.len();
        loop {
            if let Some(node) = path.get(..len).and_then(|p| self.nodes.get(p)) {
                return pick(node);
            }
            if len == 0 {
                return Pos { line: 1, column: 1 };
            }
            len -= 1;
        }
    }
}

/// Builds a path (an array of `Seg`) from keys and indices: `yaml_path!["inputs", name, "paths", 0]`.
#[macro_export]
macro_rules! yaml_path {
    ($($seg:expr),* $(,)?) => {
        [$($crate::config::span::Seg::from($seg)),*]
    };
}

#[cfg(test)]
mod tests {
    use crate::config::span::{Pos, Spans};

    const DOC: &str = "\
state_dir: /var/lib/dingtail
inputs:
  nginx:
    paths: [\"/var/log/nginx/*.log\", '/srv/*.log']
    multiline:
      start: '^\\d{4}'
rules:
  - /etc/a.yaml
  - name: x
    match: plain (?P<s>\\d+)
";

    #[test]
    fn finds_keys_values_and_sequence_items() {
        let spans = Spans::parse(DOC).unwrap();
        assert_eq!(
            spans.key_or_value(&yaml_path!["state_dir"]),
            Pos { line: 1, column: 1 }
        );
        assert_eq!(
            spans.value(&yaml_path!["state_dir"]),
            Pos {
                line: 1,
                column: 12
            }
        );
        assert_eq!(
            spans.key_or_value(&yaml_path!["inputs", "nginx"]),
            Pos { line: 3, column: 3 }
        );
        assert_eq!(
            spans.value(&yaml_path!["inputs", "nginx", "paths", 1]),
            Pos {
                line: 4,
                column: 37
            }
        );
        assert_eq!(
            spans.value(&yaml_path!["inputs", "nginx", "multiline", "start"]),
            Pos {
                line: 6,
                column: 14
            }
        );
        assert_eq!(
            spans.value(&yaml_path!["rules", 0]),
            Pos { line: 8, column: 5 }
        );
        assert_eq!(
            spans.key_or_value(&yaml_path!["rules", 1, "match"]),
            Pos {
                line: 10,
                column: 5
            }
        );
    }

    #[test]
    fn points_inside_quoted_and_plain_scalars() {
        let spans = Spans::parse(DOC).unwrap();
        // `'^\d{4}'` starts at column 14; its character 1 (`\`) is at column 16.
        assert_eq!(
            spans.inside_value(&yaml_path!["inputs", "nginx", "multiline", "start"], 1),
            Pos {
                line: 6,
                column: 16
            }
        );
        assert_eq!(
            spans.inside_value(&yaml_path!["rules", 1, "match"], 6),
            Pos {
                line: 10,
                column: 18
            }
        );
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let spans = Spans::parse(DOC).unwrap();
        assert_eq!(
            spans.key_or_value(&yaml_path!["inputs", "nginx", "exclude"]),
            Pos { line: 3, column: 3 }
        );
        assert_eq!(
            spans.key_or_value(&yaml_path!["nothing"]),
            Pos { line: 1, column: 1 }
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = Spans::parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
