//! The rule files a `rules:` glob names now: `*` does not cross `/`, `**` does, and a walk goes
//! only as deep as the glob has components. Kept apart from the rule loader, which only needs
//! the list of files.

use std::fs;
use std::path::{Path, PathBuf};

/// True when `glob` has a wildcard (`*`, `?`, `[`, `{`).
pub fn has_wildcards(glob: &str) -> bool {
    glob.contains(['*', '?', '[', '{'])
}

/// The regular files matching the absolute `glob` now, sorted. `*` does not cross `/`; `**`
/// does. A glob without wildcards gives its path if it is a file.
///
/// # Errors
/// The glob does not parse.
pub fn expand_glob(glob: &str) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(glob);
    if !has_wildcards(glob) {
        return Ok(if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            Vec::new()
        });
    }
    let matcher = globset::GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map_err(|err| err.kind().to_string())?
        .compile_matcher();
    // Walk from the longest directory prefix without wildcards.
    let mut base = PathBuf::new();
    let mut n_rest = 0usize;
    let mut in_rest = false;
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        if in_rest || has_wildcards(&text) {
            in_rest = true;
            n_rest += 1;
        } else {
            base.push(component);
        }
    }
    let max_depth = if glob.contains("**") { 32 } else { n_rest };
    let mut found = Vec::new();
    walk(&base, max_depth, &matcher, &mut found);
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, depth: usize, matcher: &globset::GlobMatcher, found: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, depth - 1, matcher, found);
        } else if path.is_file() && matcher.is_match(&path) {
            found.push(path);
        }
    }
}
