//! Compiling a regex written in a config or rule file, with errors that point at the offending
//! character of the file (not just "regex parse error").

use regex::Regex;

/// A regex that did not compile: what is wrong and at which character of the pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// 0-based character offset inside the pattern.
    pub offset: usize,
    /// What is wrong, one line.
    pub message: String,
}

/// Compiles `pattern`.
///
/// # Errors
/// The position inside the pattern and the reason, when it does not compile (syntax errors and
/// patterns too big for the regex engine's size limit).
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    if let Err(err) = regex_syntax::Parser::new().parse(pattern) {
        let (byte, message) = match &err {
            regex_syntax::Error::Parse(e) => (e.span().start.offset, e.kind().to_string()),
            regex_syntax::Error::Translate(e) => (e.span().start.offset, e.kind().to_string()),
            other => (0, other.to_string()),
        };
        let offset = pattern.get(..byte).map_or(0, |head| head.chars().count());
        return Err(PatternError {
            offset,
            message: format!("invalid regex: {message}"),
        });
    }
    Regex::new(pattern).map_err(|err| PatternError {
        offset: 0,
        message: format!(
            "invalid regex: {}",
            err.to_string().lines().last().unwrap_or("")
        ),
    })
}

/// The named capture groups of `regex` with the character offset of each name in `pattern`
/// (its source), in pattern order; an offset of 0 when the name cannot be found in the text.
pub fn capture_offsets(pattern: &str, regex: &Regex) -> Vec<(String, usize)> {
    regex
        .capture_names()
        .flatten()
        .map(|name| {
            let offset = ["(?P<", "(?<"]
                .iter()
                .find_map(|open| {
                    pattern
                        .find(&format!("{open}{name}>"))
                        .map(|at| at + open.len())
                })
                .and_then(|byte| pattern.get(..byte))
                .map_or(0, |head| head.chars().count());
            (name.to_string(), offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::pattern::{capture_offsets, compile};

    #[test]
    fn capture_names_are_found_in_the_pattern() {
        let pattern = r"日 (?P<host>\S+) (?<ms>\d+)";
        let regex = compile(pattern).unwrap();
        assert_eq!(
            capture_offsets(pattern, &regex),
            [("host".to_string(), 6), ("ms".to_string(), 19)]
        );
    }

    #[test]
    fn errors_point_at_the_character() {
        let err = compile(r"ok (?P<status>5\d\d").unwrap_err();
        assert_eq!(err.offset, 3, "{err:?}");
        assert!(err.message.contains("unclosed group"), "{err:?}");
        let err = compile("日本(?P<x>a)[z-a]").unwrap_err();
        assert_eq!(err.offset, 11, "{err:?}"); // the `z` of `[z-a]`
        assert!(compile(r"^\d{4}-\d\d").is_ok());
    }
}
