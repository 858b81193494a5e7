//! `Candidates`: one combined regex over all the patterns of a rule set, used to find the lines
//! that *may* match without running the rule set on every line (issue 7).
//!
//! Most log lines match nothing. Searching a whole buffer of many lines with one regex (the way
//! ripgrep does) lets the regex engine's literal prefilters and DFA skip over them at memory speed;
//! only a line holding a candidate position is then checked exactly, by the `RegexSet`.
//!
//! The combined regex is built from the patterns' syntax trees, loosened so that it can only
//! over-report, never under-report:
//! - capture groups are dropped (names may repeat across rules, and nothing is extracted here);
//! - `^`, `$`, `\A` and `\z` become their multi-line, CRLF-aware forms, so that they hold at every
//!   line boundary inside a buffer (and before a `\r` that the line reader strips);
//! - word boundaries (`\b`, `\B`, ...) are dropped: they would hold differently at a line's edge
//!   and a Unicode `\b` makes the DFA give up on non-ASCII text.
//!
//! A pattern that can match across a newline (`\s`, `[^x]`) is harmless: a candidate found in one
//! line is checked exactly on that line alone, and the search resumes at the next line, so a line
//! that matches on its own is always reached by a search that starts at or before it.

use regex::bytes::{Regex as BytesRegex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind, Look, Repetition};

/// Size limits for the combined regex: generous, because it is built once per load and a
/// too-small lazy-DFA cache makes the scan fall back to slower engines.
const COMBINED_SIZE_LIMIT: usize = 256 << 20;
const COMBINED_DFA_SIZE_LIMIT: usize = 64 << 20;

/// Finds candidate lines for a set of patterns.
#[derive(Clone, Debug)]
pub struct Candidates {
    regex: BytesRegex,
}

impl Candidates {
    /// The candidate finder of `patterns`, or `None` when the combined regex cannot be built
    /// (then every line has to be checked by the exact matcher).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Option<Candidates> {
        let mut alternatives = Vec::new();
        for pattern in patterns {
            let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
            alternatives.push(loosen(&hir));
        }
        if alternatives.is_empty() {
            return None;
        }
        let combined = Hir::alternation(alternatives).to_string();
        let regex = RegexBuilder::new(&combined)
            .size_limit(COMBINED_SIZE_LIMIT)
            .dfa_size_limit(COMBINED_DFA_SIZE_LIMIT)
            .build()
            .ok()?;
        Some(Candidates { regex })
    }

    /// The bounds `(start, end)` of the first line at or after `at` (a line start) that holds a
    /// candidate; `end` is the position of its `\n` or the buffer's end.
    pub fn next_line(&self, buf: &[u8], at: usize) -> Option<(usize, usize)> {
        let found = self.regex.find_at(buf, at)?;
        let head = buf.get(at..found.start())?;
        let start = memchr::memrchr(b'\n', head).map_or(at, |i| at + i + 1);
        let tail = buf.get(found.start()..)?;
        let end = memchr::memchr(b'\n', tail).map_or(buf.len(), |i| found.start() + i);
        Some((start, end))
    }

    /// True when `line` may match one of the patterns.
    pub fn is_match(&self, line: &str) -> bool {
        self.regex.is_match(line.as_bytes())
    }
}

/// `hir` without captures and word boundaries, with line-anchored `^`/`$`: it matches wherever
/// `hir` matches, and maybe more.
fn loosen(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(literal) => Hir::literal(literal.0.clone()),
        HirKind::Class(class) => Hir::class(class.clone()),
        HirKind::Look(look) => match look {
            Look::Start | Look::StartLF | Look::StartCRLF => Hir::look(Look::StartCRLF),
            Look::End | Look::EndLF | Look::EndCRLF => Hir::look(Look::EndCRLF),
            _ => Hir::empty(),
        },
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            min: repetition.min,
            max: repetition.max,
            greedy: repetition.greedy,
            sub: Box::new(loosen(&repetition.sub)),
        }),
        HirKind::Capture(capture) => loosen(&capture.sub),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(loosen).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(loosen).collect()),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::matcher::Candidates;

    fn lines(patterns: &[&str], buf: &str) -> Vec<String> {
        let candidates = Candidates::new(patterns.iter().copied()).unwrap();
        let mut at = 0;
        let mut out = Vec::new();
        while let Some((start, end)) = candidates.next_line(buf.as_bytes(), at) {
            out.push(buf.get(start..end).unwrap().to_string());
            at = end + 1;
        }
        out
    }

    #[test]
    fn finds_every_line_that_matches_on_its_own() {
        let buf = "ok 1\nERROR x\nfine\nWARN (?P<a>) y\nabc\nlast ERROR";
        assert_eq!(
            lines(&["ERROR", "WARN"], buf),
            ["ERROR x", "WARN (?P<a>) y", "last ERROR"]
        );
        // Anchors hold at every line start and end, also before a `\r`.
        let buf = "a b\r\nb a\r\nab\n";
        assert_eq!(lines(&["^b", "b$"], buf), ["a b\r", "b a\r", "ab"]);
        // Duplicate capture names across patterns are fine.
        assert_eq!(
            lines(&[r"(?P<n>\d)x", r"(?P<n>\d)y"], "1x\n--\n2y"),
            ["1x", "2y"]
        );
    }

    #[test]
    fn patterns_that_cross_newlines_never_hide_a_later_line() {
        // `a\s+b` matches from line 1 into line 2; line 3 matches on its own and must be found.
        let buf = "xx a\nb yy\na b\n";
        let found = lines(&[r"a\s+b"], buf);
        assert!(found.contains(&"a b".to_string()), "{found:?}");
        // `[^z]*q` spans lines too.
        let found = lines(&[r"^[^z]*q$"], "a\nb\nzq\nq\n");
        assert!(found.contains(&"q".to_string()), "{found:?}");
    }

    #[test]
    fn word_boundaries_are_loosened_not_lost() {
        let buf = "café ok\nthe cat sat\nconcat\n";
        let found = lines(&[r"\bcat\b"], buf);
        assert!(found.contains(&"the cat sat".to_string()), "{found:?}");
        assert!(Candidates::new([r"(?i)é\b"]).unwrap().is_match("CAFÉ"));
    }
}
