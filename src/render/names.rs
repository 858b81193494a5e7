//! The filters, tests and functions a template names, with where (issue 12). minijinja resolves
//! them only when a template runs, and `Renderer` falls back to plain text when one is missing,
//! so a misspelt `{{ line | upcase }}` would only show at 3 a.m.; `Renderer::new` asks this scan
//! for every name and checks each against the environment at load instead.
//!
//! A small lexer of Jinja's default syntax, not a parser: inside `{{ … }}` and `{% … %}` (not in
//! `{# … #}`, `{% raw %}` or string literals) the name after `|` or after `{% filter` is a filter,
//! the name after `is` (or `is not`) a test, and a name followed by `(` that is not a method
//! (after `.`) nor a filter's or test's own arguments is a function call. Offsets are in
//! characters, as `TemplateSpec::position` takes them.

use minijinja::{Environment, ErrorKind, Value};

use crate::config::diag::did_you_mean;

/// Filter names offered as "did you mean" (each is checked against the environment first, so a
/// name minijinja does not have is never suggested).
pub const FILTER_CANDIDATES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "count",
    "d",
    "datetime",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "trim",
    "unique",
    "upper",
];

/// Test names offered as "did you mean" (checked like [`FILTER_CANDIDATES`]).
pub const TEST_CANDIDATES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Names of other template languages and what minijinja calls them, for "did you mean".
const SYNONYMS: &[(&str, &str)] = &[
    ("upcase", "upper"),
    ("uppercase", "upper"),
    ("downcase", "lower"),
    ("lowercase", "lower"),
    ("strip", "trim"),
    ("len", "length"),
    ("size", "length"),
    ("date", "datetime"),
    ("strftime", "datetime"),
    ("time_format", "datetime"),
];

/// The known name `unknown` most likely means.
fn suggest(unknown: &str, known: &[&str]) -> Option<String> {
    let synonym = SYNONYMS
        .iter()
        .find(|(word, name)| *word == unknown && known.contains(name))
        .map(|(_, name)| *name);
    synonym
        .or_else(|| did_you_mean(unknown, known.iter().copied()))
        .map(|best| format!("did you mean `{best}`?"))
}

/// A name and the character offset where it starts in the template.
pub type Named = (String, usize);

/// What one template names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Filters: `x | name`, `{% filter name %}`.
    pub filters: Vec<Named>,
    /// Tests: `x is name`, `x is not name`.
    pub tests: Vec<Named>,
    /// Functions called: `name(…)`.
    pub calls: Vec<Named>,
}

/// A problem found: character offset, message, hint.
pub type Problem = (usize, String, Option<String>);

/// The filters and tests of `names` that `env` does not have, each with a "did you mean" among
/// the candidates `env` does have.
pub fn unknown(env: &Environment<'_>, names: &Names) -> Vec<Problem> {
    let mut state = env.empty_state();
    let mut has_filter = |name: &str| {
        !matches!(
            state.apply_filter(name, &[Value::from("")]),
            Err(err) if err.kind() == ErrorKind::UnknownFilter
        )
    };
    let mut problems = Vec::new();
    let known: Vec<&str> = FILTER_CANDIDATES
        .iter()
        .copied()
        .filter(|name| has_filter(name))
        .collect();
    for (name, at) in &names.filters {
        if !has_filter(name) {
            problems.push((
                *at,
                format!("unknown filter `{name}`"),
                suggest(name, &known),
            ));
        }
    }
    let mut state = env.empty_state();
    let mut has_test = |name: &str| {
        !matches!(
            state.perform_test(name, &[Value::from("")]),
            Err(err) if err.kind() == ErrorKind::UnknownTest
        )
    };
    let known: Vec<&str> = TEST_CANDIDATES
        .iter()
        .copied()
        .filter(|name| has_test(name))
        .collect();
    for (name, at) in &names.tests {
        if !has_test(name) {
            problems.push((*at, format!("unknown test `{name}`"), suggest(name, &known)));
        }
    }
    problems
}

/// What the next name will be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Anything,
    Filter,
    Test,
}

/// Scans `source` for the names it uses.
pub fn scan(source: &str) -> Names {
    let chars: Vec<char> = source.chars().collect();
    let mut names = Names::default();
    let mut i = 0;
    while i + 1 < chars.len() {
        let (open, next) = (chars.get(i).copied(), chars.get(i + 1).copied());
        match (open, next) {
            (Some('{'), Some('#')) => i = skip_past(&chars, i + 2, &['#', '}']),
            (Some('{'), Some('{')) => i = code(&chars, i + 2, &['}', '}'], false, &mut names),
            (Some('{'), Some('%')) => i = code(&chars, i + 2, &['%', '}'], true, &mut names),
            _ => i += 1,
        }
    }
    names
}

/// The index just past the first `close` at or after `from` (the end when there is none).
fn skip_past(chars: &[char], from: usize, close: &[char]) -> usize {
    let mut i = from;
    while i < chars.len() {
        if chars.get(i..i + close.len()) == Some(close) {
            return i + close.len();
        }
        i += 1;
    }
    chars.len()
}

/// Scans one tag's code from `from` to its `close`; returns the index past it.
fn code(chars: &[char], from: usize, close: &[char], block: bool, names: &mut Names) -> usize {
    let mut i = from;
    let mut expect = Expect::Anything;
    let mut first_word = true;
    let mut after_dot = false;
    // The parenthesis depth at which a filter's or test's own arguments start, if inside them.
    while i < chars.len() {
        if chars.get(i..i + close.len()) == Some(close) {
            return i + close.len();
        }
        let Some(&c) = chars.get(i) else { break };
        match c {
            '\'' | '"' => {
                i = skip_string(chars, i + 1, c);
                after_dot = false;
            }
            '|' => {
                expect = Expect::Filter;
                i += 1;
            }
            '.' => {
                after_dot = true;
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let mut j = i;
                while chars.get(j).is_some_and(|c| c.is_whitespace()) {
                    j += 1;
                }
                let called = chars.get(j) == Some(&'(');
                match expect {
                    Expect::Filter => {
                        names.filters.push((word.clone(), start));
                        expect = Expect::Anything;
                    }
                    Expect::Test if word == "not" => {}
                    Expect::Test => {
                        names.tests.push((word.clone(), start));
                        expect = Expect::Anything;
                    }
                    Expect::Anything if word == "is" => expect = Expect::Test,
                    Expect::Anything if block && first_word && word == "filter" => {
                        expect = Expect::Filter;
                    }
                    Expect::Anything if block && first_word && word == "raw" => {
                        return skip_raw(chars, i);
                    }
                    Expect::Anything if called && !after_dot => {
                        names.calls.push((word.clone(), start));
                    }
                    Expect::Anything => {}
                }
                first_word = false;
                after_dot = false;
            }
            c if c.is_whitespace() || c == '-' || c == '+' => i += 1,
            _ => {
                after_dot = false;
                i += 1;
            }
        }
    }
    chars.len()
}

/// The index past the closing quote of a string literal that starts at `from`.
fn skip_string(chars: &[char], from: usize, quote: char) -> usize {
    let mut i = from;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == '\\' {
            i += 1;
        } else if c == quote {
            break;
        }
    }
    i
}

/// The index past `{% endraw %}` (the raw block's text holds no code).
fn skip_raw(chars: &[char], from: usize) -> usize {
    let mut i = skip_past(chars, from, &['%', '}']);
    while i < chars.len() {
        let at = skip_past(chars, i, &['{', '%']);
        let mut j = at;
        while chars
            .get(j)
            .is_some_and(|c| c.is_whitespace() || *c == '-' || *c == '+')
        {
            j += 1;
        }
        let word: String = chars.get(j..j + 6).unwrap_or_default().iter().collect();
        if word == "endraw" {
            return skip_past(chars, j, &['%', '}']);
        }
        i = at;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use crate::render::names::scan;

    fn names(list: &[(String, usize)]) -> Vec<(&str, usize)> {
        list.iter().map(|(n, at)| (n.as_str(), *at)).collect()
    }

    #[test]
    fn filters_tests_and_calls_with_their_offsets() {
        let found = scan("{{ line | upcase }} {% if x is not emptyish %}{{ now() }}{% endif %}");
        assert_eq!(names(&found.filters), [("upcase", 10)]);
        assert_eq!(names(&found.tests), [("emptyish", 35)]);
        assert_eq!(names(&found.calls), [("now", 49)]);
    }

    #[test]
    fn strings_comments_raw_blocks_methods_and_arguments_are_not_names() {
        let found = scan(
            "{# x | nope #}{{ 'a | b(' ~ \"is c\" }}{% raw %}{{ y | nope }}{% endraw %}\
             {{ s.upper() | replace('a', 'b') | datetime(\"%H\") }}{% filter trim %}x{% endfilter %}\
             {{ range(3) | join(',') }} text | not(code)",
        );
        assert_eq!(
            names(&found.filters)
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            ["replace", "datetime", "trim", "join"]
        );
        assert!(found.tests.is_empty(), "{found:?}");
        assert_eq!(
            names(&found.calls)
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>(),
            ["range"]
        );
    }

    #[test]
    fn multibyte_text_counts_characters() {
        let found = scan("告警 {{ x|nope }}");
        assert_eq!(names(&found.filters), [("nope", 8)]);
    }
}
