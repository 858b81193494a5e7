//! `Diagnostic`: one problem found while loading configuration, pointing at file, line and column
//! (and the rule, when one is concerned). A load returns every diagnostic it found, not just the
//! first, so an operator fixes a file in one round.

use std::fmt;
use std::path::{Path, PathBuf};

/// One configuration or rule problem, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// The rule concerned, if any.
    pub rule: Option<String>,
    /// What is wrong, lowercase, without a final period.
    pub message: String,
    /// A suggestion ("did you mean `severity`?"), if there is one.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a known position.
    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            rule: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Names the rule the diagnostic concerns.
    pub fn with_rule(mut self, rule: impl Into<String>) -> Diagnostic {
        self.rule = Some(rule.into());
        self
    }

    /// Adds a suggestion.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        f.write_str(": ")?;
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem found by one load, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// The problems, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The candidate closest to `unknown`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Words people write for a key, with the key dingtail has for it: a typo is caught by
/// [`did_you_mean`], a synonym (`mention` for `at`) only by this list. An entry applies only where
/// its key is accepted.
const KEY_SYNONYMS: &[(&str, &str)] = &[
    ("mention", "at"),
    ("mentions", "at"),
    ("notify", "at"),
    ("at_mobiles", "at"),
    ("atMobiles", "mobiles"),
    ("mobile", "mobiles"),
    ("phone", "mobiles"),
    ("phones", "mobiles"),
    ("user", "user_ids"),
    ("users", "user_ids"),
    ("userid", "user_ids"),
    ("user_id", "user_ids"),
    ("userids", "user_ids"),
    ("atUserIds", "user_ids"),
    ("everyone", "all"),
    ("at_all", "all"),
    ("isAtAll", "all"),
    ("regex", "match"),
    ("regexp", "match"),
    ("pattern", "match"),
    ("patterns", "match"),
    ("matches", "match"),
    ("excludes", "exclude"),
    ("ignore", "exclude"),
    ("level", "severity"),
    ("priority", "severity"),
    ("file", "paths"),
    ("files", "paths"),
    ("path", "paths"),
    ("glob", "paths"),
    ("globs", "paths"),
    ("url", "webhook"),
    ("webhook_url", "webhook"),
    ("token", "webhook"),
    ("access_token", "webhook"),
    ("sign", "secret"),
    ("signature", "secret"),
    ("keyword", "keywords"),
    ("rate", "per_minute"),
    ("rate_limit", "per_minute"),
    ("limit", "per_minute"),
    ("subject", "title"),
    ("text", "template"),
    ("message", "template"),
    ("body", "template"),
    ("rule_files", "rules"),
    ("state", "state_dir"),
    ("state_directory", "state_dir"),
    ("data_dir", "state_dir"),
    ("hostname", "host"),
    ("bind", "listen"),
    ("metrics", "listen"),
    ("multi_line", "multiline"),
];

/// The key among `candidates` that `unknown` most likely means: a known synonym first, else the
/// closest spelling ([`did_you_mean`]).
pub fn did_you_mean_key<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let synonym = KEY_SYNONYMS
        .iter()
        .filter(|(word, _)| word.eq_ignore_ascii_case(unknown))
        .find_map(|(_, key)| candidates.iter().copied().find(|c| c == key));
    synonym.or_else(|| did_you_mean(unknown, candidates.iter().copied()))
}

/// Turns a serde error message into a diagnostic message and hint: strips serde_yaml's
/// " at line N column M" (the position is reported separately) and, for an unknown field, adds a
/// "did you mean" from the expected names serde lists ([`did_you_mean_key`]).
pub fn from_serde_message(message: &str) -> (String, Option<String>) {
    let message = match message.rfind(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message),
        None => message,
    };
    let hint = message.split_once("unknown field `").and_then(|(_, rest)| {
        let (unknown, expected) = rest.split_once('`')?;
        let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        did_you_mean_key(unknown, names.iter().copied())
            .map(|best| format!("did you mean `{best}`?"))
    });
    (message.to_string(), hint)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::diag::{Diagnostic, did_you_mean, did_you_mean_key, from_serde_message};

    #[test]
    fn suggests_synonyms_where_their_key_is_accepted() {
        let rule = ["name", "input", "match", "robot", "at"];
        assert_eq!(did_you_mean_key("mention", rule), Some("at"));
        assert_eq!(did_you_mean_key("Regex", rule), Some("match"));
        assert_eq!(did_you_mean_key("robt", rule), Some("robot"));
        // `mobile` means `mobiles` only where there is one.
        assert_eq!(did_you_mean_key("mobile", rule), None);
        assert_eq!(
            did_you_mean_key("mobile", ["mobiles", "user_ids", "all"]),
            Some("mobiles")
        );
        let (_, hint) = from_serde_message(
            "unknown field `mention`, expected one of `name`, `input`, `at` at line 5 column 3",
        );
        assert_eq!(hint.as_deref(), Some("did you mean `at`?"));
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("sevrity", ["severity", "robot", "match"]),
            Some("severity")
        );
        assert_eq!(did_you_mean("zzz", ["severity", "robot"]), None);
        let (message, hint) = from_serde_message(
            "inputs.web: unknown field `pahts`, expected one of `paths`, `exclude` at line 3 column 5",
        );
        assert_eq!(
            message,
            "inputs.web: unknown field `pahts`, expected one of `paths`, `exclude`"
        );
        assert_eq!(hint.as_deref(), Some("did you mean `paths`?"));
    }

    #[test]
    fn display_names_file_line_column_rule_and_hint() {
        let d = Diagnostic::at(
            Path::new("/etc/dingtail/rules.d/web.yaml"),
            3,
            12,
            "unknown key `sevrity`",
        )
        .with_rule("nginx-5xx")
        .with_hint("did you mean `severity`?");
        assert_eq!(
            d.to_string(),
            "/etc/dingtail/rules.d/web.yaml:3:12: rule `nginx-5xx`: unknown key `sevrity` (did you mean `severity`?)"
        );
    }
}
