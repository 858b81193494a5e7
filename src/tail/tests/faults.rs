//! Faults and moves on the fake clock: a directory that cannot be listed or a file that cannot
//! be stat-ed keeps what is followed; a file missed by a scan, renamed away and back, or
//! deleted.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use std::time::Duration;
use tempfile::TempDir;

use crate::config::StartAt;
use crate::tail::Tailer;

use super::{Harness, append, input, start, texts};

/// A tailer on `*.log` in a new directory whose `app.log` holds `text`, every line of it read.
fn following(text: &str) -> (TempDir, PathBuf, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, text);
    let mut tailer = start(
        vec![input(&dir.path().join("*.log"), StartAt::Beginning)],
        vec![],
        true,
    );
    let expected: Vec<&str> = text.lines().collect();
    assert_eq!(texts(&tailer.lines(expected.len())), expected);
    (dir, path, tailer)
}

/// Lists or stats of `path` fail with `kind` from now on (`None`: they work again), and the
/// tailer rescans at once.
fn fault(tailer: &mut Tailer, path: &Path, kind: Option<ErrorKind>) {
    for input in &mut tailer.inputs {
        input.globs.inject_fault(path, kind);
    }
    tailer.wake.rescan();
}

#[test]
fn a_directory_that_cannot_be_listed_keeps_its_files_and_their_positions() {
    for kind in [
        ErrorKind::PermissionDenied,
        ErrorKind::StaleNetworkFileHandle,
        ErrorKind::Other, // EIO, EMFILE
    ] {
        let (dir, path, mut tailer) = following("one\n");

        fault(&mut tailer, dir.path(), Some(kind));
        // Longer than the drain grace (1 s): an unknown directory is not an empty one.
        tailer.quiet(Duration::from_millis(1500));
        assert_eq!(tailer.n_files(), 1, "{kind:?}: the file was closed");
        assert!(
            tailer.unreadable.contains(dir.path()),
            "{kind:?}: reported (once) and retried every poll interval"
        );
        append(&path, "two\n");
        assert_eq!(texts(&tailer.lines(1)), ["two"], "{kind:?}");

        fault(&mut tailer, dir.path(), None);
        append(&path, "three\n");
        assert_eq!(
            texts(&tailer.lines(1)),
            ["three"],
            "{kind:?}: not read again from 0"
        );
        tailer.quiet(Duration::from_millis(300));
        assert!(tailer.unreadable.is_empty(), "{kind:?}");
        assert_eq!(tailer.checkpoints()[0].offset, 14, "{kind:?}");
    }
}

#[test]
fn a_file_that_cannot_be_stated_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "one\n");
    // A literal path: no listing, only a stat.
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    assert_eq!(texts(&tailer.lines(1)), ["one"]);
    fault(&mut tailer, &path, Some(ErrorKind::StaleNetworkFileHandle));
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(tailer.n_files(), 1);
    fault(&mut tailer, &path, None);
    append(&path, "two\n");
    assert_eq!(texts(&tailer.lines(1)), ["two"]);
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_file_missed_by_a_scan_but_still_at_its_path_is_not_closed() {
    let (dir, path, mut tailer) = following("one\n");
    // The listing claims the directory is gone (a spurious ENOENT): the scan misses the
    // file, it drains, and the look at its path before closing keeps it.
    fault(&mut tailer, dir.path(), Some(ErrorKind::NotFound));
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(tailer.n_files(), 1, "closed although still at its path");
    fault(&mut tailer, dir.path(), None);
    append(&path, "two\n");
    assert_eq!(texts(&tailer.lines(1)), ["two"]);
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_file_renamed_away_and_back_resumes_at_its_offset() {
    let (dir, path, mut tailer) = following("one\ntwo\n");
    let away = dir.path().join("app.moved");
    fs::rename(&path, &away).unwrap();
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(tailer.n_files(), 0, "released after the drain grace");
    let checkpoints = tailer.checkpoints();
    assert_eq!(checkpoints.len(), 1, "kept for a return: {checkpoints:?}");
    assert_eq!(checkpoints[0].offset, 8);

    fs::rename(&away, &path).unwrap();
    append(&path, "three\n");
    assert_eq!(
        texts(&tailer.lines(1)),
        ["three"],
        "resumed, not read again from 0"
    );
    assert_eq!(tailer.n_files(), 1);
    assert_eq!(tailer.checkpoints().len(), 1, "one checkpoint per inode");
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_deleted_file_leaves_no_checkpoint_behind() {
    let (_dir, path, mut tailer) = following("one\n");
    fs::remove_file(&path).unwrap();
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(tailer.n_files(), 0);
    assert!(
        tailer.checkpoints().is_empty(),
        "{:?}",
        tailer.checkpoints()
    );
}
