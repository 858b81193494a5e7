//! Discovery: which files an input's globs match right now, and which directories to watch so
//! that the next change is noticed.
//!
//! globset only matches paths, it does not walk, so each include glob is split into a literal
//! directory prefix (walked from) and a pattern (matched against full paths). The walk goes only
//! as deep as the glob has components, unless the glob holds `**`. Symlinks are followed (their
//! targets decide whether an entry is a file or a directory); directories, FIFOs, sockets and
//! devices matching a glob are skipped. Exclude globs are matched against both the full path and
//! the file name, so `*.gz` excludes compressed rotations wherever they are; compressed names
//! (`.gz`, `.xz`, `.bz2`, `.zst`, `.zip`) are skipped anyway, even when a glob names them
//! (`crate::tail::sniff`), and listed in [`Scan::skipped`]. `cri` and `auto` inputs also
//! exclude the `.tmp` file kubelet compresses a rotation into before naming it `.gz`.
//!
//! The directories returned are the walk's starting points, every directory walked through, and
//! the directory of each symlink's target: a write through a symlink is reported by inotify on
//! the target's directory, not the link's.
//!
//! Only `NotFound` (and `NotADirectory`) mean that a path is gone. Any other error while listing
//! a directory or stat-ing an entry (EACCES, EMFILE, EIO, ESTALE on NFS) means that what lies
//! there is *unknown* this pass: the path goes into [`Scan::unknown`], and the tailer keeps
//! following the files it follows under it instead of taking them for deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::config::{Format, InputConfig};
use crate::tail::sniff::{Skip, compressed_name};

/// kubelet compresses an older rotated container log (`0.log.20261124-120000`) into
/// `….tmp`, then renames it to `….gz` (which every input skips by its name): `cri` and `auto`
/// inputs skip the `.tmp` too, whatever their globs say (issue 14).
const KUBELET_COMPRESSING: [&str; 1] = ["*.log.*.tmp"];

/// How deep a `**` glob is walked at most (a guard against symlink loops).
const MAX_RECURSIVE_DEPTH: usize = 32;

/// One input's compiled globs.
#[derive(Debug)]
pub struct InputGlobs {
    include: Vec<IncludeGlob>,
    exclude: GlobSet,
    /// Test hook: errors to report instead of listing or stat-ing these paths.
    #[cfg(test)]
    faults: std::collections::HashMap<PathBuf, io::ErrorKind>,
}

#[derive(Debug)]
struct IncludeGlob {
    /// The glob as configured.
    pattern: String,
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
    /// Directories that could not be listed, and entries that could not be stat-ed, for a
    /// reason other than not existing: what lies at or under them is unknown this pass.
    pub unknown: BTreeMap<PathBuf, Unknown>,
    /// Files matched but not followed: compressed names.
    pub skipped: Vec<(PathBuf, Skip)>,
}

/// Why a path's contents are unknown this pass.
#[derive(Debug)]
pub struct Unknown {
    /// True for a directory that could not be listed, false for a path that could not be
    /// stat-ed.
    pub listing: bool,
    /// What the OS said.
    pub error: io::Error,
}

impl Scan {
    /// True when `path` is at or under a path whose contents this pass could not learn.
    pub fn is_unknown(&self, path: &Path) -> bool {
        !self.unknown.is_empty() && path.ancestors().any(|p| self.unknown.contains_key(p))
    }
}

/// True when `err` says the path does not exist (as opposed to: could not be looked at).
pub fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
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
                pattern: pattern.clone(),
                matcher,
                prefix,
                depth,
            });
        }
        let mut exclude = GlobSetBuilder::new();
        for pattern in &input.exclude {
            exclude.add(Glob::new(pattern).map_err(|err| (pattern.clone(), err))?);
        }
        if matches!(input.decoding.format, Format::Cri | Format::Auto) {
            for pattern in KUBELET_COMPRESSING {
                exclude.add(Glob::new(pattern).map_err(|err| ((*pattern).to_string(), err))?);
            }
        }
        let exclude = exclude
            .build()
            .map_err(|err| (input.exclude.join(", "), err))?;
        Ok(InputGlobs {
            include,
            exclude,
            #[cfg(test)]
            faults: std::collections::HashMap::new(),
        })
    }

    /// True when `path` matches an include glob and no exclude glob.
    pub fn matches(&self, path: &Path) -> bool {
        self.include.iter().any(|g| g.matcher.is_match(path)) && !self.is_excluded(path)
    }

    /// The configured include globs that match `path`.
    pub fn patterns_matching<'a>(&'a self, path: &'a Path) -> impl Iterator<Item = &'a str> + 'a {
        self.include
            .iter()
            .filter(move |g| g.matcher.is_match(path))
            .map(|g| g.pattern.as_str())
    }

    /// Test hook: listing or stat-ing `path` fails with `kind` (`None`: works again).
    #[cfg(test)]
    pub(crate) fn inject_fault(&mut self, path: &Path, kind: Option<io::ErrorKind>) {
        match kind {
            Some(kind) => self.faults.insert(path.to_path_buf(), kind),
            None => self.faults.remove(path),
        };
    }

    #[cfg(test)]
    fn fault(&self, path: &Path) -> Option<io::Error> {
        self.faults.get(path).map(|kind| io::Error::from(*kind))
    }

    #[cfg(not(test))]
    #[allow(clippy::unused_self)]
    fn fault(&self, _path: &Path) -> Option<io::Error> {
        None
    }

    fn read_dir(&self, dir: &Path) -> io::Result<fs::ReadDir> {
        match self.fault(dir) {
            Some(err) => Err(err),
            None => fs::read_dir(dir),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        match self.fault(path) {
            Some(err) => Err(err),
            None => fs::metadata(path),
        }
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
                    self.consider(glob, glob.prefix.clone(), None, scan, &mut found);
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
        let entries = match self.read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                // A missing directory may appear later (the safety rescan finds it); any other
                // error leaves its contents unknown, not empty (and its watch, if any, kept).
                if !is_gone(&err) {
                    scan.dirs.insert(dir.to_path_buf());
                    let unknown = Unknown {
                        listing: true,
                        error: err,
                    };
                    scan.unknown.insert(dir.to_path_buf(), unknown);
                }
                return;
            }
        };
        scan.dirs.insert(dir.to_path_buf());
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => paths.push(entry.path()),
                Err(err) => {
                    // The listing broke off: what it did not return is unknown.
                    let unknown = Unknown {
                        listing: true,
                        error: err,
                    };
                    scan.unknown.insert(dir.to_path_buf(), unknown);
                    break;
                }
            }
        }
        paths.sort();
        for path in paths {
            // `None`: a dangling symlink, gone since read_dir, or unknown (recorded in `scan`).
            let Some(meta) = self.stat(&path, scan) else {
                continue;
            };
            if meta.is_dir() {
                if level < max {
                    self.walk(glob, &path, level + 1, max, scan, found);
                }
            } else {
                self.consider(glob, path, Some(meta), scan, found);
            }
        }
    }

    /// `stat` of `path` (symlinks followed); a path that is gone is `None`, and so is one that
    /// cannot be stat-ed for another reason, which is recorded in `scan` as unknown.
    fn stat(&self, path: &Path, scan: &mut Scan) -> Option<Metadata> {
        match self.metadata(path) {
            Ok(meta) => Some(meta),
            Err(err) if is_gone(&err) => None,
            Err(err) => {
                let unknown = Unknown {
                    listing: false,
                    error: err,
                };
                scan.unknown.insert(path.to_path_buf(), unknown);
                None
            }
        }
    }

    /// `meta`: the path's `stat` when the caller has it already.
    fn consider(
        &self,
        glob: &IncludeGlob,
        path: PathBuf,
        meta: Option<Metadata>,
        scan: &mut Scan,
        found: &mut Vec<Candidate>,
    ) {
        if !glob.matcher.is_match(&path) || self.is_excluded(&path) {
            return;
        }
        if let Some(skip) = compressed_name(&path) {
            scan.skipped.push((path, skip));
            return;
        }
        let Some(meta) = meta.or_else(|| self.stat(&path, scan)) else {
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

    use crate::config::{Format, InputConfig, StartAt};
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
            decoding: crate::config::Decoding::default(),
            journald: None,
            timestamp: None,
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

    /// Issue 14: kubelet's compressed rotations (`….tmp` while written, then `….gz`) are never
    /// followed by a `cri` input; the newest rotation, still text, is. (`.gz` is skipped by its
    /// name for every input.)
    #[test]
    fn cri_inputs_skip_kubelet_compressed_rotations() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pods/shop_web-0_uid/nginx");
        fs::create_dir_all(&dir).unwrap();
        for name in [
            "0.log",
            "0.log.20261124-120000",
            "0.log.20261124-110000.tmp",
            "0.log.20261124-100000.gz",
        ] {
            fs::write(dir.join(name), "x\n").unwrap();
        }
        let glob = format!("{}/*", dir.display());
        let found = |format| {
            let mut cri = input(std::slice::from_ref(&glob), &[]);
            cri.decoding.format = format;
            let mut found: Vec<PathBuf> = InputGlobs::new(&cri)
                .unwrap()
                .discover(&mut Scan::default())
                .into_iter()
                .map(|c| c.path)
                .collect();
            found.sort();
            found
        };
        assert_eq!(
            found(Format::Cri),
            [dir.join("0.log"), dir.join("0.log.20261124-120000")]
        );
        assert_eq!(
            found(Format::Plain).len(),
            3,
            "`.tmp` only for container inputs"
        );
    }

    #[test]
    fn only_a_missing_directory_is_empty_other_listing_errors_are_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/a.log"), "a\n").unwrap();
        fs::write(root.join("b.log"), "b\n").unwrap();
        let glob = format!("{}/**/*.log", root.display());
        let mut globs = InputGlobs::new(&input(&[glob], &[])).unwrap();

        // The walk's root cannot be listed (EIO, EMFILE...): everything under it is unknown.
        globs.inject_fault(root, Some(std::io::ErrorKind::Other));
        let mut scan = Scan::default();
        assert!(globs.discover(&mut scan).is_empty());
        assert!(scan.is_unknown(&root.join("b.log")), "{scan:?}");
        assert!(scan.is_unknown(&root.join("sub/a.log")), "{scan:?}");
        assert!(scan.dirs.contains(root), "still watched: {scan:?}");
        globs.inject_fault(root, None);

        // A subdirectory cannot be looked at: only what is under it is unknown.
        globs.inject_fault(
            &root.join("sub"),
            Some(std::io::ErrorKind::PermissionDenied),
        );
        let mut scan = Scan::default();
        let found: Vec<PathBuf> = globs
            .discover(&mut scan)
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(found, [root.join("b.log")]);
        assert!(scan.is_unknown(&root.join("sub/a.log")), "{scan:?}");
        assert!(!scan.is_unknown(&root.join("b.log")), "{scan:?}");

        // A stat error on an entry: that entry is unknown.
        globs.inject_fault(&root.join("sub"), None);
        globs.inject_fault(
            &root.join("b.log"),
            Some(std::io::ErrorKind::StaleNetworkFileHandle),
        );
        let mut scan = Scan::default();
        assert_eq!(globs.discover(&mut scan).len(), 1);
        assert!(scan.is_unknown(&root.join("b.log")), "{scan:?}");

        // Not found is gone, not unknown.
        globs.inject_fault(&root.join("b.log"), None);
        globs.inject_fault(&root.join("sub"), Some(std::io::ErrorKind::NotFound));
        let mut scan = Scan::default();
        assert_eq!(globs.discover(&mut scan).len(), 1);
        assert!(scan.unknown.is_empty(), "{scan:?}");
    }
}
