//! `Survey`: what a valid configuration will meet on this machine, as warnings (issue 12). A
//! config can load cleanly and still never alert: an input whose globs match no file (its
//! directory may not even exist), log files the service user cannot read, a state directory it
//! cannot create or write, no rules at all, a rule whose inputs have no file, a robot no rule
//! uses. `dingtail check` prints these (and fails on them with `--strict`); `dingtail run` logs
//! them at start and once an hour while they hold ([`Reminder`]), and exports the number of files
//! per input.
//!
//! Split like the rest of dingtail: [`probe`] looks at the file system (the tailer's own
//! discovery, `access(2)` as the user running) and returns plain [`Facts`]; [`warnings`] turns
//! facts into `Diagnostic`s without any I/O, so every message is unit-tested on made-up facts.

pub mod probe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::span::{Seg, Spans};
use crate::config::{Config, Diagnostic};
use crate::noun;
use crate::pipeline::Pipeline;
use crate::yaml_path;

pub use crate::survey::probe::survey;

/// How often `run` repeats a warning that still holds.
pub const REMIND_EVERY: Duration = Duration::from_secs(3600);

/// At most this many paths are named in one warning; the rest are counted.
const MAX_PATHS_NAMED: usize = 5;

/// What a survey found: the files each input matches now, and the warnings.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    /// Files matched now, per input name.
    pub files: BTreeMap<String, usize>,
    /// Everything that will keep the configuration from working, as the loader's warnings and
    /// then in config order.
    pub warnings: Vec<Diagnostic>,
}

/// What [`probe`] saw on the file system.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Per input name.
    pub inputs: BTreeMap<String, InputFacts>,
    /// The state directory.
    pub state_dir: StateDir,
}

/// The files of one input, now.
#[derive(Clone, Debug, Default)]
pub struct InputFacts {
    /// The files the tailer's discovery finds now.
    pub files: Vec<PathBuf>,
    /// Files found that cannot be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Directories under the globs that cannot be listed, with the reason.
    pub unlisted: Vec<(PathBuf, String)>,
    /// Each include glob with the directory it is walked from.
    pub globs: Vec<GlobFacts>,
    /// A journald input: why its journal cannot be read now (`journal::probe`), if it cannot.
    pub journal: Option<String>,
}

/// One include glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobFacts {
    /// The glob as configured (absolute).
    pub glob: String,
    /// The directory before its first wildcard (a plain path's own directory).
    pub dir: PathBuf,
    /// Whether that directory exists.
    pub dir_exists: bool,
}

/// Whether the daemon will be able to keep its state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StateDir {
    /// It exists (or can be created) and can be written.
    #[default]
    Usable,
    /// Something other than a directory is in the way.
    NotADirectory,
    /// It exists but cannot be written (the reason).
    NotWritable(String),
    /// It does not exist and cannot be created: `ancestor`, the nearest existing folder, is not
    /// writable (the reason).
    CannotCreate {
        /// The nearest existing ancestor.
        ancestor: PathBuf,
        /// Why it cannot be written.
        reason: String,
    },
    /// The database file exists but cannot be read and written (its path, the reason).
    DatabaseNotWritable(PathBuf, String),
}

/// The warnings of `pipeline` given `facts`; positions in the main config come from `spans`
/// (the main config's text), rule positions from the rules.
pub fn warnings(pipeline: &Pipeline, facts: &Facts, spans: &Spans) -> Vec<Diagnostic> {
    let config = &pipeline.config;
    let at = |path: &[Seg], message: String| -> Diagnostic {
        let (line, column) = spans.node(path).map_or((0, 0), |node| {
            let pos = node.key.unwrap_or(node.value);
            (pos.line, pos.column)
        });
        Diagnostic::at(&config.source, line, column, message)
    };
    let mut out: Vec<Diagnostic> = pipeline.warnings.clone();
    for (name, input) in &config.inputs {
        let Some(found) = facts.inputs.get(name) else {
            continue;
        };
        // Inputs without paths (a journal) have no files to find.
        if found.files.is_empty() && !input.paths.is_empty() {
            out.push(at(
                &yaml_path!["inputs", name.as_str(), "paths"],
                format!(
                    "input `{name}`: no file matches now ({}); it is watched, but nothing is read until one appears",
                    glob_states(&found.globs)
                ),
            ));
        }
        if !found.unreadable.is_empty() {
            out.push(at(
                &yaml_path!["inputs", name.as_str(), "paths"],
                format!(
                    "input `{name}`: cannot read {}: {}",
                    noun::count(found.unreadable.len(), "file"),
                    named(&found.unreadable)
                ),
            ));
        }
        if let Some(problem) = &found.journal {
            out.push(at(
                &yaml_path!["inputs", name.as_str(), "journald"],
                format!("input `{name}`: the journal cannot be read: {problem}"),
            ));
        }
        if !found.unlisted.is_empty() {
            out.push(at(
                &yaml_path!["inputs", name.as_str(), "paths"],
                format!(
                    "input `{name}`: cannot list {}: {}; files there are not seen",
                    noun::count(found.unlisted.len(), "directory"),
                    named(&found.unlisted)
                ),
            ));
        }
    }
    if let Some(message) = state_dir_message(config, &facts.state_dir) {
        out.push(at(&yaml_path!["state_dir"], message));
    }
    if pipeline.n_rules() == 0 {
        out.push(at(
            &yaml_path!["rules"],
            "no rules: the inputs are read but nothing can alert (`rules:` names no rule file, or its files hold no rule)"
                .to_string(),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut used_robots: Vec<&str> = Vec::new();
    for rule in pipeline.rules.values().flat_map(|set| set.rules()) {
        if seen.contains(&rule.name()) {
            continue;
        }
        seen.push(rule.name());
        used_robots.extend(rule.robots().iter().map(String::as_str));
        let fed = rule.inputs().iter().any(|input| {
            facts
                .inputs
                .get(input)
                .is_none_or(|found| !found.files.is_empty())
                || config.inputs.get(input).is_some_and(|i| i.paths.is_empty())
        });
        if !fed {
            out.push(
                Diagnostic::at(
                    rule.file(),
                    rule.line(),
                    0,
                    format!(
                        "no input feeds it: {} {} no file now",
                        backticked(rule.inputs()),
                        if rule.inputs().len() == 1 {
                            "matches"
                        } else {
                            "match"
                        }
                    ),
                )
                .with_rule(rule.name()),
            );
        }
    }
    for name in config.robots.keys() {
        if !used_robots.contains(&name.as_str()) {
            out.push(at(
                &yaml_path!["robots", name.as_str()],
                format!("robot `{name}` is used by no rule"),
            ));
        }
    }
    out
}

/// What is wrong with the state directory, if anything.
fn state_dir_message(config: &Config, state: &StateDir) -> Option<String> {
    let dir = config.state_dir.display();
    Some(match state {
        StateDir::Usable => return None,
        StateDir::NotADirectory => format!("state_dir {dir} is not a directory"),
        StateDir::NotWritable(reason) => {
            format!("state_dir {dir} is not writable ({reason}); `run` cannot keep its state")
        }
        StateDir::CannotCreate { ancestor, reason } => format!(
            "state_dir {dir} does not exist and cannot be created: {} is not writable ({reason})",
            ancestor.display()
        ),
        StateDir::DatabaseNotWritable(file, reason) => format!(
            "state database {} cannot be read and written ({reason})",
            file.display()
        ),
    })
}

/// `` `glob`: the directory D does not exist; … `` for each glob.
fn glob_states(globs: &[GlobFacts]) -> String {
    let states: Vec<String> = globs
        .iter()
        .map(|glob| {
            let state = if glob.dir_exists {
                "exists"
            } else {
                "does not exist"
            };
            format!(
                "`{}`: the directory {} {state}",
                glob.glob,
                glob.dir.display()
            )
        })
        .collect();
    states.join("; ")
}

/// `a (why), b (why)` and "and N more" past [`MAX_PATHS_NAMED`].
fn named(paths: &[(PathBuf, String)]) -> String {
    let mut parts: Vec<String> = paths
        .iter()
        .take(MAX_PATHS_NAMED)
        .map(|(path, why)| format!("{} ({why})", path.display()))
        .collect();
    if paths.len() > MAX_PATHS_NAMED {
        parts.push(format!("and {} more", paths.len() - MAX_PATHS_NAMED));
    }
    parts.join(", ")
}

fn backticked(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    names.join(", ")
}

/// The directory a glob is walked from: its components before the first wildcard (for a path
/// without wildcards, its parent).
pub fn glob_dir(glob: &str) -> PathBuf {
    let path = Path::new(glob);
    let wild = |c: &str| c.contains(['*', '?', '[', '{']);
    let mut dir = PathBuf::new();
    let mut had_wildcard = false;
    for component in path.components() {
        if wild(&component.as_os_str().to_string_lossy()) {
            had_wildcard = true;
            break;
        }
        dir.push(component);
    }
    if had_wildcard {
        dir
    } else {
        path.parent().map_or(dir, Path::to_path_buf)
    }
}

/// Decides which warnings `run` logs: each when first seen, then again once [`REMIND_EVERY`]
/// has passed while it still holds; a warning that stopped holding is forgotten, so it is said
/// again at once if it comes back. Pure: `now` is a parameter.
#[derive(Debug, Default)]
pub struct Reminder {
    said: BTreeMap<String, Instant>,
}

impl Reminder {
    /// The warnings of `current` to log at `now`.
    pub fn due<'a>(&mut self, current: &'a [Diagnostic], now: Instant) -> Vec<&'a Diagnostic> {
        let texts: Vec<String> = current.iter().map(ToString::to_string).collect();
        self.said.retain(|text, _| texts.contains(text));
        let mut due = Vec::new();
        for (warning, text) in current.iter().zip(texts) {
            let is_due = self
                .said
                .get(&text)
                .is_none_or(|said| now.saturating_duration_since(*said) >= REMIND_EVERY);
            if is_due {
                self.said.insert(text, now);
                due.push(warning);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests;
