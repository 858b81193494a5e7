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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::diag::Diagnostic;

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
