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
//!
//! In front of the combined regex sits a literal prefilter, when every pattern allows one: for
//! each pattern, a small set of strings of which every match holds at least one (`Exception: `
//! or `Error: ` for `(?:Exception|Error): (.*)`, the 32 spellings of `(?i)error`). A search for
//! those literals (the regex crate's SIMD Teddy searcher, one pass per group of 48 literals, no
//! automaton in the loop) finds the few lines that may match; only those pay for the combined
//! regex and the `RegexSet`. A pattern without a selective literal (`\d+`, `^.*$`), or more
//! literals than a few passes can search, turn the prefilter off for the whole set, so that no
//! line is missed; the combined regex then scans, as ripgrep's lazy DFA does.

use regex::bytes::{Regex as BytesRegex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind, Look, Repetition};

/// Size limits for the combined regex: generous, because it is built once per load and a
/// too-small lazy-DFA cache makes the scan fall back to slower engines.
const COMBINED_SIZE_LIMIT: usize = 256 << 20;
const COMBINED_DFA_SIZE_LIMIT: usize = 64 << 20;

/// The shortest literal worth a prefilter: shorter ones (`: `, `=`) are in most lines anyway.
const MIN_LITERAL_LEN: usize = 3;
/// The most strings one pattern may contribute to the prefilter (products of small classes and
/// alternations grow fast).
const MAX_LITERALS: usize = 64;
/// The most characters a class may have to be spelled out as literals (`[eE]`, `[0-9]`).
const MAX_CLASS_CHARS: usize = 10;
/// Literals per prefilter regex: up to this many, the regex crate searches them with SIMD
/// (Teddy); one regex over many more falls back to an automaton, several times slower, and
/// 48 measured faster than 32 or 64 on the 100 benchmark rules (issue 7).
const LITERALS_PER_GROUP: usize = 48;
/// Past this many groups, a scan would pass over a buffer more often than the combined regex's
/// lazy DFA costs (about 7 passes on the benchmark machine), and a line be checked against more
/// searchers than the DFA costs (about 4): the prefilter is then off.
const MAX_LITERAL_GROUPS: usize = 4;

/// Finds candidate lines for a set of patterns.
#[derive(Clone, Debug)]
pub struct Candidates {
    regex: BytesRegex,
    /// Literals every match of some pattern holds, when every pattern has selective ones, in
    /// groups small enough for a SIMD search each.
    literals: Option<Vec<BytesRegex>>,
}

impl Candidates {
    /// The candidate finder of `patterns`, or `None` when the combined regex cannot be built
    /// (then every line has to be checked by the exact matcher).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Option<Candidates> {
        let mut alternatives = Vec::new();
        let mut literals: Option<Vec<Vec<u8>>> = Some(Vec::new());
        for pattern in patterns {
            let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
            alternatives.push(loosen(&hir));
            literals = literals.and_then(|mut all| {
                all.extend(required(&hir).filter(|set| is_selective(set))?);
                Some(all)
            });
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
        let literals = literals.and_then(|mut all| {
            all.sort();
            all.dedup();
            if all.len() > LITERALS_PER_GROUP * MAX_LITERAL_GROUPS {
                return None;
            }
            all.chunks(LITERALS_PER_GROUP)
                .map(|group| {
                    let hir = Hir::alternation(group.iter().cloned().map(Hir::literal).collect());
                    RegexBuilder::new(&hir.to_string())
                        .size_limit(COMBINED_SIZE_LIMIT)
                        .dfa_size_limit(COMBINED_DFA_SIZE_LIMIT)
                        .build()
                        .ok()
                })
                .collect::<Option<Vec<_>>>()
        });
        Some(Candidates { regex, literals })
    }

    /// The bounds `(start, end)` of the lines of `buf` that hold a candidate, in order; `end`
    /// is the position of the line's `\n` or the buffer's end.
    pub fn lines<'a>(&'a self, buf: &'a [u8]) -> CandidateLines<'a> {
        let searchers: Vec<&BytesRegex> = match &self.literals {
            Some(groups) => groups.iter().collect(),
            None => vec![&self.regex],
        };
        CandidateLines {
            next: vec![Next::Unknown; searchers.len()],
            searchers,
            buf,
            at: 0,
        }
    }

    /// True when `line` may match one of the patterns.
    pub fn is_match(&self, line: &str) -> bool {
        let line = line.as_bytes();
        self.literals
            .as_ref()
            .is_none_or(|groups| groups.iter().any(|l| l.is_match(line)))
            && self.regex.is_match(line)
    }

    /// True when a literal prefilter runs in front of the combined regex.
    #[cfg(test)]
    pub fn has_literals(&self) -> bool {
        self.literals.is_some()
    }
}

/// Where a searcher's next hit is.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// Not searched since the scan moved past its last hit.
    Unknown,
    /// At this position.
    At(usize),
    /// Nowhere in the rest of the buffer.
    Never,
}

/// The candidate lines of one buffer (see [`Candidates::lines`]). Each searcher's next hit is
/// remembered, so that every searcher passes over the buffer once, however many there are.
#[derive(Debug)]
pub struct CandidateLines<'a> {
    searchers: Vec<&'a BytesRegex>,
    next: Vec<Next>,
    buf: &'a [u8],
    /// The start of the next line to look at.
    at: usize,
}

impl Iterator for CandidateLines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let at = self.at;
        if at >= self.buf.len() {
            return None;
        }
        let mut first: Option<usize> = None;
        for (searcher, next) in self.searchers.iter().zip(self.next.iter_mut()) {
            let hit = match *next {
                Next::At(pos) if pos >= at => Some(pos),
                Next::Never => None,
                Next::At(_) | Next::Unknown => {
                    let found = searcher.find_at(self.buf, at).map(|m| m.start());
                    *next = found.map_or(Next::Never, Next::At);
                    found
                }
            };
            if let Some(pos) = hit {
                first = Some(first.map_or(pos, |f| f.min(pos)));
            }
        }
        let Some(found) = first else {
            self.at = self.buf.len();
            return None;
        };
        let head = self.buf.get(at..found)?;
        let start = memchr::memrchr(b'\n', head).map_or(at, |i| at + i + 1);
        let tail = self.buf.get(found..)?;
        let end = memchr::memchr(b'\n', tail).map_or(self.buf.len(), |i| found + i);
        self.at = end + 1;
        Some((start, end))
    }
}

/// A set of strings of which every match of `hir` holds at least one, or `None` when none is
/// known. Sound, not complete: it may miss a better set, never claim a wrong one.
fn required(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Capture(capture) => required(&capture.sub),
        HirKind::Repetition(repetition) if repetition.min >= 1 => required(&repetition.sub),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for sub in subs {
                all.extend(required(sub)?);
            }
            (all.len() <= MAX_LITERALS).then_some(all)
        }
        HirKind::Concat(subs) => {
            // Runs of children that match a finite set of strings multiply out into one set
            // (`(?:Exception|Error)` then `: `); any other child offers its own required set.
            // Groups inside are opened up, so that `" (?P<status>5\d\d)` gives `" 50`..`" 59`.
            let mut items = Vec::new();
            for sub in subs {
                flatten(sub, &mut items);
            }
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Option<Vec<Vec<u8>>> = None;
            for sub in items {
                match exact(sub) {
                    Some(set) => {
                        run = Some(match run.take() {
                            None => set,
                            Some(prefix) => match product(&prefix, &set) {
                                Some(longer) => longer,
                                None => {
                                    best = better(best, Some(prefix));
                                    set
                                }
                            },
                        });
                    }
                    None => {
                        best = better(best, run.take());
                        best = better(best, required(sub));
                    }
                }
            }
            better(best, run)
        }
        _ => exact(hir),
    }
}

/// The parts of a concatenation, with capture groups and nested concatenations opened up.
fn flatten<'h>(hir: &'h Hir, out: &mut Vec<&'h Hir>) {
    match hir.kind() {
        HirKind::Capture(capture) => flatten(&capture.sub, out),
        HirKind::Concat(subs) => {
            for sub in subs {
                flatten(sub, out);
            }
        }
        _ => out.push(hir),
    }
}

/// Every string `hir` can match, when that is a small finite set.
fn exact(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(literal) => Some(vec![literal.0.to_vec()]),
        HirKind::Class(Class::Unicode(class)) => {
            let mut out = Vec::new();
            for range in class.iter() {
                for c in range.start()..=range.end() {
                    if out.len() == MAX_CLASS_CHARS {
                        return None;
                    }
                    out.push(c.to_string().into_bytes());
                }
            }
            Some(out)
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut out = Vec::new();
            for range in class.iter() {
                for b in range.start()..=range.end() {
                    if out.len() == MAX_CLASS_CHARS {
                        return None;
                    }
                    out.push(vec![b]);
                }
            }
            Some(out)
        }
        HirKind::Capture(capture) => exact(&capture.sub),
        HirKind::Concat(subs) => {
            let mut out = vec![Vec::new()];
            for sub in subs {
                out = product(&out, &exact(sub)?)?;
            }
            Some(out)
        }
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for sub in subs {
                out.extend(exact(sub)?);
            }
            (out.len() <= MAX_LITERALS).then_some(out)
        }
        _ => None,
    }
}

/// Every `a` followed by every `b`, unless that makes too many strings.
fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > MAX_LITERALS {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
            .collect(),
    )
}

/// The more selective of two required sets: the longer shortest string, then fewer strings.
fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    let score = |set: &Vec<Vec<u8>>| {
        let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
        (shortest, std::cmp::Reverse(set.len()))
    };
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// True when every string of `set` is long enough to be rare in ordinary lines.
fn is_selective(set: &[Vec<u8>]) -> bool {
    !set.is_empty() && set.iter().all(|s| s.len() >= MIN_LITERAL_LEN)
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
        candidates
            .lines(buf.as_bytes())
            .map(|(start, end)| buf.get(start..end).unwrap().to_string())
            .collect()
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

    fn required_of(pattern: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::Parser::new().parse(pattern).unwrap();
        let mut set: Vec<String> = super::required(&hir)?
            .into_iter()
            .map(|s| String::from_utf8(s).unwrap())
            .collect();
        set.sort();
        Some(set)
    }

    #[test]
    fn required_literals_are_the_most_selective_ones_every_match_holds() {
        assert_eq!(
            required_of(r"^(?P<e>[a-z][\w.]*(?:Exception|Error)): (?P<m>.*)").unwrap(),
            ["Error: ", "Exception: "]
        );
        // `\d` is Unicode: far too many digits to spell out.
        assert_eq!(
            required_of(r#"" (?P<status>5\d\d) (?P<b>\d+) "#).unwrap(),
            ["\" 5"]
        );
        assert_eq!(
            required_of(r"sshd\[\d+\]: Failed password for (?:invalid user )?(?P<u>\S+)").unwrap(),
            ["]: Failed password for "]
        );
        assert_eq!(required_of("(?i)err").unwrap().len(), 8);
        assert_eq!(required_of("FATAL|PANIC").unwrap(), ["FATAL", "PANIC"]);
        // Nothing is required of a pattern that may match without a literal.
        assert_eq!(required_of(r"\d+"), None);
        assert_eq!(required_of("a*"), None);
        assert_eq!(required_of(r"foo|\d"), None);
    }

    #[test]
    fn the_prefilter_is_used_only_when_every_pattern_has_a_selective_literal() {
        assert!(
            Candidates::new(["ERROR", "(?i)timed out"])
                .unwrap()
                .has_literals()
        );
        // `: ` is in most lines, `\d` has no literal: a scan must not skip lines for them.
        assert!(
            !Candidates::new(["ERROR", "(?P<k>\\w+): "])
                .unwrap()
                .has_literals()
        );
        assert!(
            !Candidates::new(["ERROR", r"(?P<n>\d)"])
                .unwrap()
                .has_literals()
        );
        // Without the prefilter, lines are still found, by the combined regex.
        assert_eq!(lines(&["ERROR", r"x\d"], "a\nx1\nERROR\n"), ["x1", "ERROR"]);
        assert_eq!(
            lines(&["ERROR", "(?i)fatal"], "a\nFaTaL\nERROR\nok"),
            ["FaTaL", "ERROR"]
        );
    }

    #[test]
    fn many_literals_are_searched_in_groups_without_losing_a_line() {
        let patterns: Vec<String> = (0..150).map(|i| format!("alert-{i:03}!")).collect();
        let candidates = Candidates::new(patterns.iter().map(String::as_str)).unwrap();
        assert_eq!(candidates.literals.as_ref().map(Vec::len), Some(4));
        // Past four groups, more passes would cost more than the combined regex.
        let more: Vec<String> = (0..200).map(|i| format!("alert-{i:03}!")).collect();
        assert!(
            !Candidates::new(more.iter().map(String::as_str))
                .unwrap()
                .has_literals()
        );
        // Hits of different groups interleave, repeat, and share lines.
        let wanted = [149, 0, 77, 77, 3, 148, 50, 1];
        let mut buf = String::new();
        for (n, i) in wanted.iter().enumerate() {
            buf.push_str(&format!("quiet line {n}\nx alert-{i:03}! y alert-000!\n"));
        }
        let found = lines(
            &patterns.iter().map(String::as_str).collect::<Vec<_>>(),
            &buf,
        );
        let expected: Vec<String> = wanted
            .iter()
            .map(|i| format!("x alert-{i:03}! y alert-000!"))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn word_boundaries_are_loosened_not_lost() {
        let buf = "café ok\nthe cat sat\nconcat\n";
        let found = lines(&[r"\bcat\b"], buf);
        assert!(found.contains(&"the cat sat".to_string()), "{found:?}");
        assert!(Candidates::new([r"(?i)é\b"]).unwrap().is_match("CAFÉ"));
    }
}
