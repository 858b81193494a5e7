//! Glob history: which `(input, glob)` pairs have had a scan, which decides where `start_at`
//! applies.
//!
//! `start_at: end` is for the history a file holds when dingtail first looks at it, not for
//! lines written later. So it applies to the files a glob finds in its *first* scan ever —
//! at the first start of a state directory, for an input or a path added to the config later
//! (by a reload or across a restart) — while a file that appears later under a glob already
//! scanned is new and is read from its beginning. The pairs are stored in the state database
//! (`state::globs`) so that this holds across restarts.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use crate::tail::discover::InputGlobs;

/// What earlier runs of this state dir scanned, which decides where `start_at` applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobHistory {
    /// The state dir is new: `start_at` applies to every file found by the first scan.
    FirstStart,
    /// These `(input, glob)` pairs were scanned before; files first found through other globs
    /// follow `start_at`.
    Known(BTreeSet<(String, String)>),
    /// Every configured glob counts as scanned (a state dir from before globs were recorded):
    /// every file without a checkpoint is read from its beginning.
    AllKnown,
    /// The state was lost (a damaged database moved aside): every file found by the first scan
    /// starts at its end, whatever `start_at` says — replaying whole files would flood the
    /// group with old news. Files that appear later follow the usual rules.
    Lost,
}

/// Per input, the globs that have had a scan.
#[derive(Debug, Default)]
pub(super) struct ScannedGlobs {
    scanned: HashMap<String, HashSet<String>>,
    /// The next scan starts every file it finds at its end ([`GlobHistory::Lost`]).
    all_at_end: bool,
}

impl ScannedGlobs {
    /// The state `history` describes, for inputs configured with `globs` (name → globs).
    pub(super) fn new<'a>(
        history: GlobHistory,
        configured: impl Iterator<Item = (&'a str, &'a [String])>,
    ) -> ScannedGlobs {
        let all_at_end = history == GlobHistory::Lost;
        let scanned = match history {
            GlobHistory::FirstStart | GlobHistory::Lost => HashMap::new(),
            GlobHistory::Known(known) => {
                let mut scanned: HashMap<String, HashSet<String>> = HashMap::new();
                for (input, glob) in known {
                    scanned.entry(input).or_default().insert(glob);
                }
                scanned
            }
            GlobHistory::AllKnown => configured
                .map(|(input, globs)| (input.to_string(), globs.iter().cloned().collect()))
                .collect(),
        };
        ScannedGlobs {
            scanned,
            all_at_end,
        }
    }

    /// True during the first scan after the state was lost: new files start at their end.
    pub(super) fn all_at_end(&self) -> bool {
        self.all_at_end
    }

    /// True when no glob of `input` through which `path` is matched has had a scan: the file
    /// is found by a glob's first scan, and `start_at` applies to it.
    pub(super) fn is_fresh(&self, input: &str, globs: &InputGlobs, path: &Path) -> bool {
        let known = self.scanned.get(input);
        !globs
            .patterns_matching(path)
            .any(|glob| known.is_some_and(|known| known.contains(glob)))
    }

    /// Records that `input`'s `globs` have had a scan.
    pub(super) fn mark(&mut self, input: &str, globs: &[String]) {
        self.all_at_end = false;
        self.scanned
            .entry(input.to_string())
            .or_default()
            .extend(globs.iter().cloned());
    }

    /// Forgets the globs no longer configured (configured again later, they are new).
    pub(super) fn retain_configured<'a>(
        &mut self,
        configured: impl Iterator<Item = (&'a str, &'a [String])>,
    ) {
        let configured: HashMap<&str, &[String]> = configured.collect();
        self.scanned
            .retain(|name, globs| match configured.get(name.as_str()) {
                Some(paths) => {
                    globs.retain(|glob| paths.contains(glob));
                    !globs.is_empty()
                }
                None => false,
            });
    }

    /// The `(input, glob)` pairs, to be stored.
    pub(super) fn pairs(&self) -> BTreeSet<(String, String)> {
        self.scanned
            .iter()
            .flat_map(|(input, globs)| globs.iter().map(|glob| (input.clone(), glob.clone())))
            .collect()
    }
}
