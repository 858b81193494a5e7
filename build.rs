//! Build script: records the commit the binary is built from, for `dingtail --version`.
//!
//! The commit comes from, in order: `DINGTAIL_COMMIT` in the environment (set by whoever builds
//! without a git checkout, e.g. the container build), the `.cargo_vcs_info.json` that
//! `cargo package` writes into a published crate, and `git rev-parse --short HEAD` when the
//! package directory is the top of a git work tree (not a crate unpacked inside someone else's). Without any of them
//! the build still succeeds and the version says `commit unknown`. Cargo re-runs this script only
//! when `HEAD` or the branch it names moves, so ordinary edits do not pay for it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DINGTAIL_COMMIT");
    let commit = std::env::var("DINGTAIL_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .map(|commit| commit.trim().to_string())
        .or_else(vcs_info_commit)
        .or_else(git_commit)
        .unwrap_or_else(|| "commit unknown".to_string());
    println!("cargo:rustc-env=DINGTAIL_COMMIT={commit}");
}

/// The short hash of `HEAD`, and a rerun trigger on the files that move with it.
fn git_commit() -> Option<String> {
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if top.canonicalize().ok()? != here.canonicalize().ok()? {
        return None;
    }
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    // HEAD itself (a branch switch), the branch it points to (a commit), and packed-refs (where
    // the branch lives after `git gc`). Only files that exist: a missing one would re-run always.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched
        .iter()
        .map(PathBuf::from)
        .filter(|path| path.exists())
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(commit)
}

/// Runs git in the package directory; its trimmed stdout when it succeeds with some.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// The commit `cargo package` recorded in a published crate (`"sha1": "<40 hex digits>"`).
fn vcs_info_commit() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cargo_vcs_info.json");
    let text = std::fs::read_to_string(path).ok()?;
    let (_, after) = text.split_once("\"sha1\"")?;
    let hash: String = after
        .trim_start_matches([' ', ':', '"'])
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(7)
        .collect();
    (hash.len() == 7).then_some(hash)
}
