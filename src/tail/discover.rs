//! Discovery: which files an input's globs match right now, and which directories to watch so
//! that the next change is noticed.
//!
//! globset only matches paths, it does not walk, so each include glob is split into a literal
//! directory prefix (walked from) and a pattern (matched against full paths). The walk goes only
//! as deep as the glob has components, unless the glob holds `**`. Symlinks are followed (their
//! targets decide whether an entry is a file or a directory); directories, FIFOs, sockets and
//! devices matching a glob are skipped. Exclude globs are matched against both the full path and
//! the file name, so `*.gz` excludes compressed rotations wherever they are.
//!
//! The directories returned are the walk's starting points, every directory walked through, and
//! the directory of each symlink's target: a write through a symlink is reported by inotify on
//! the target's directory, not the link's.

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::config::InputConfig;

/// How deep a `**` glob is walked at most (a guard against symlink loops).
const MAX_RECURSIVE_DEPTH: usize = 32;

/// One input's compiled globs.
#[derive(Debug)]
pub struct InputGlobs {
    include: Vec<IncludeGlob>,
    exclude: GlobSet,
}

#[derive(Debug)]
struct IncludeGlob {
    matcher: GlobMatcher,
    /// The literal directories before the first component with a wildcard.
    prefix: PathBuf,
    /// How many components follow the prefix; `None` for a `**` glob.
    depth: Option<usize>,
}

/// What a discovery pass learns besides the files: where to watch, and what it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Directories worth watching.
    pub dirs: BTreeSet<PathBuf>,
    /// Directories that could not be listed for lack of permission.
    pub denied: BTreeSet<PathBuf>,
}

/// A regular file matched by a glob, with its (symlink-followed) metadata.
#[derive(Debug)]
pub struct Candidate {
    /// The path it was found at.
    pub path: PathBuf,
    /// `stat` of the path (symlinks followed).
    pub meta: Metadata,
}

impl InputGlobs {
    /// Compiles the globs of `input`.
    ///
    /// # Errors
    /// A glob does not compile (the config loader has checked them, so this is a bug elsewhere),
    /// as `(glob, error)`.
    pub fn new(input: &InputConfig) -> Result<InputGlobs, (String, globset::Error)> {
        let mut include = Vec::new();
        for pattern in &input.paths {
            let matcher = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|err| (pattern.clone(), err))?
                .compile_matcher();
            let (prefix, depth) = split(pattern);
            include.push(IncludeGlob {
                matcher,
                prefix,
                depth,
            });
        }
        let mut exclude = GlobSetBuilder::new();
        for pattern in &input.exclude {
            exclude.add(Glob::new(pattern).map_err(|err| (pattern.clone(), err))?);
        }
        let exclude = exclude
            .build()
            .map_err(|err| (input.exclude.join(", "), err))?;
        Ok(InputGlobs { include, exclude })
    }

    /// The files matched now, in a stable order (glob order, then path order); a file matched
    /// by several globs appears once per path. Directories worth watching and directories that
    /// could not be listed are added to `scan`.
    pub fn discover(&self, scan: &mut Scan) -> Vec<Candidate> {
        let mut found = Vec::new();
        for glob in &self.include {
            match glob.depth {
                Some(0) => {
                    if let Some(parent) = glob.prefix.parent() {
                        scan.dirs.insert(parent.to_path_buf());
                    }
                    self.consider(glob, glob.prefix.clone(), scan, &mut found);
                }
                depth => {
                    let max = depth.unwrap_or(MAX_RECURSIVE_DEPTH);
                    self.walk(glob, &glob.prefix, 1, max, scan, &mut found);
                }
            }
        }
        found
    }

    fn walk(
        &self,
        glob: &IncludeGlob,
        dir: &Path,
        level: usize,
        max: usize,
        scan: &mut Scan,
        found: &mut Vec<Candidate>,
    ) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                // A missing directory may appear later (the safety rescan finds it); a
                // forbidden one is worth telling the operator about.
                if err.kind() == std::io::ErrorKind::PermissionDenied {
                    scan.denied.insert(dir.to_path_buf());
                }
                return;
            }
        };
        scan.dirs.insert(dir.to_path_buf());
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let Ok(meta) = fs::metadata(&path) else {
                continue; // A dangling symlink, or gone since read_dir.
            };
            if meta.is_dir() {
                if level < max {
                    self.walk(glob, &path, level + 1, max, scan, found);
                }
            } else {
                self.consider(glob, path, scan, found);
            }
        }
    }

    fn consider(
        &self,
        glob: &IncludeGlob,
        path: PathBuf,
        scan: &mut Scan,
        found: &mut Vec<Candidate>,
    ) {
        if !glob.matcher.is_match(&path) || self.is_excluded(&path) {
            return;
        }
        let Ok(meta) = fs::metadata(&path) else {
            return;
        };
        if !meta.is_file() {
            tracing::debug!(path = %path.display(), "skipping a match that is not a regular file");
            return;
        }
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            if let Some(parent) = fs::canonicalize(&path)
                .ok()
                .and_then(|target| target.parent().map(Path::to_path_buf))
            {
                scan.dirs.insert(parent);
            }
        }
        found.push(Candidate { path, meta });
    }

    fn is_excluded(&self, path: &Path) -> bool {
        self.exclude.is_match(path) || path.file_name().is_some_and(|n| self.exclude.is_match(n))
    }
}

/// Splits a glob into its literal directory prefix and the number of components after it
/// (`None` when a `**` makes it recursive). A glob without wildcards is its own prefix, depth 0.
fn split(pattern: &str) -> (PathBuf, Option<usize>) {
    let is_wild = |c: &str| c.contains(['*', '?', '[', '{', '\\']);
    let components: Vec<&str> = pattern.split('/').collect();
    let n_literal = components.iter().take_while(|c| !is_wild(c)).count();
    let literal = components
        .get(..n_literal)
        .map(|c| c.join("/"))
        .unwrap_or_default();
    let rest = components.get(n_literal..).unwrap_or_default();
    if rest.is_empty() {
        return (PathBuf::from(pattern), Some(0));
    }
    let prefix = if literal.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(literal)
    };
    let depth = if rest.iter().any(|c| c.contains("**")) {
        None
    } else {
        Some(rest.len())
    };
    (prefix, depth)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::{InputConfig, StartAt};
    use crate::tail::discover::{InputGlobs, Scan, split};

    fn input(paths: &[String], exclude: &[&str]) -> InputConfig {
        InputConfig {
            name: "app".into(),
            paths: paths.to_vec(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            start_at: StartAt::Beginning,
            poll_interval: Duration::from_secs(1),
            max_line_bytes: 1024,
            multiline: None,
        }
    }

    #[test]
    fn splits_globs_into_prefix_and_depth() {
        assert_eq!(
            split("/var/log/nginx/*.log"),
            (PathBuf::from("/var/log/nginx"), Some(1))
        );
        assert_eq!(
            split("/var/log/*/app.log"),
            (PathBuf::from("/var/log"), Some(2))
        );
        assert_eq!(
            split("/var/log/**/*.log"),
            (PathBuf::from("/var/log"), None)
        );
        assert_eq!(
            split("/var/log/app.log"),
            (PathBuf::from("/var/log/app.log"), Some(0))
        );
    }

    #[test]
    fn finds_files_skips_dirs_fifos_and_excluded_and_follows_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("a.log"), "a\n").unwrap();
        fs::write(root.join("b.log.gz"), "b\n").unwrap();
        fs::create_dir(root.join("dir.log")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.log"))
            .status()
            .unwrap();
        assert!(fifo.success());
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("real.txt"), "r\n").unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("real.txt"), root.join("link.log"))
            .unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/deep.log"), "d\n").unwrap();

        let glob = format!("{}/*.log*", root.display());
        let globs = InputGlobs::new(&input(&[glob], &["*.gz"])).unwrap();
        let mut scan = Scan::default();
        let found: Vec<PathBuf> = globs
            .discover(&mut scan)
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(found, vec![root.join("a.log"), root.join("link.log")]);
        let dirs = &scan.dirs;
        assert!(dirs.contains(root), "{dirs:?}");
        let target_dir = fs::canonicalize(elsewhere.path()).unwrap();
        assert!(
            dirs.contains(&target_dir),
            "symlink target dir watched: {dirs:?}"
        );

        let recursive = format!("{}/**/*.log", root.display());
        let globs = InputGlobs::new(&input(&[recursive], &[])).unwrap();
        let found: Vec<PathBuf> = globs
            .discover(&mut Scan::default())
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert!(found.contains(&root.join("sub/deep.log")), "{found:?}");
    }
}
