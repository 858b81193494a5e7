//! Content identity on the fake clock (issue 19): copies made by `copytruncate` (finished or
//! still being written, found before or after the truncate), plain copies, files truncated and
//! rewritten with the same banner (while followed, while down), new files with the same head,
//! and files rotated out of a narrow glob while down.

use std::fs::{self, File};
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::config::{MultilineConfig, StartAt};
use crate::tail::fingerprint::TailHash;

use super::{append, input, start, texts, truncate};

/// `"<tag> <i>\n"` for every `i` in `range`, 10 bytes or more each.
fn numbered(tag: &str, range: Range<usize>) -> String {
    range.map(|i| format!("{tag} {i:05}\n")).collect()
}

/// A banner longer than a fingerprint's head (256 bytes), the same in every generation.
fn banner() -> String {
    (0..8)
        .map(|i| format!("# app 1.2.3 starting, config line {i} of the banner ......\n"))
        .collect()
}

const BANNER_LINES: usize = 8;

fn sorted(lines: &[crate::event::LogLine]) -> Vec<String> {
    let mut texts: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
    texts.sort();
    texts
}

fn expected(parts: &[(&str, Range<usize>)]) -> Vec<String> {
    let mut out: Vec<String> = parts
        .iter()
        .flat_map(|(tag, range)| range.clone().map(move |i| format!("{tag} {i:05}")))
        .collect();
    out.sort();
    out
}

/// A tailer on `app.log*` in `dir` (the glob matches the copies), from the beginning.
fn wide(dir: &Path) -> super::Harness {
    start(
        vec![input(&dir.join("app.log*"), StartAt::Beginning)],
        vec![],
        true,
    )
}

/// logrotate's copytruncate: copy the file, then truncate it in place (same inode).
fn copytruncate(path: &Path, copy: &Path) {
    fs::copy(path, copy).unwrap();
    truncate(path);
}

#[test]
fn copytruncate_with_a_wide_glob_reads_the_copy_window_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let glob = dir.path().join("app.log*");
    append(&path, &numbered("first", 0..40));
    let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
    tailer.lines(40);
    // Written but not read yet when logrotate copies and truncates.
    append(&path, &numbered("window", 0..5));
    copytruncate(&path, &dir.path().join("app.log.1"));
    append(&path, &numbered("after", 0..3));
    let got = tailer.lines(8);
    assert_eq!(
        sorted(&got),
        expected(&[("window", 0..5), ("after", 0..3)]),
        "the copy window once, the new content once, nothing of the copy read again"
    );
    assert!(
        got.iter()
            .filter(|l| l.text.starts_with("window"))
            .all(|l| *l.path == *dir.path().join("app.log.1")),
        "the copy window comes from the copy"
    );
    tailer.quiet(Duration::from_millis(500));
    assert_eq!(tailer.n_files(), 2);
}

#[test]
fn a_copy_shorter_than_what_was_read_is_known_without_checkpoints() {
    // `dingtail tail` never takes checkpoints: the anchors a copy is recognised by come from
    // the reads themselves. (Before, the only anchor was the read position, past the copy's
    // end, and the copy was read again from its start: 60 lines twice.)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let staged = dir.path().join("staged");
    append(&path, &numbered("first", 0..40));
    let mut tailer = wide(dir.path()).without_checkpoints();
    tailer.lines(40);
    append(&path, &numbered("more", 0..20));
    tailer.lines(20);
    // logrotate copies; the application writes on, and those lines are read from the
    // original; then the truncate, and only then is the copy found under its rotation name.
    fs::copy(&path, &staged).unwrap();
    append(&path, &numbered("late", 0..3));
    tailer.lines(3);
    truncate(&path);
    fs::rename(&staged, dir.path().join("app.log.1")).unwrap();
    append(&path, &numbered("after", 0..2));
    assert_eq!(sorted(&tailer.lines(2)), expected(&[("after", 0..2)]));
    tailer.quiet(Duration::from_millis(500));
    assert_eq!(tailer.n_files(), 2);
}

#[test]
fn a_copy_found_while_it_is_being_written_waits_for_the_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let copy = dir.path().join("app.log.1");
    append(&path, &numbered("first", 0..40));
    let mut tailer = wide(dir.path());
    tailer.lines(40);
    // logrotate created the copy: empty when the tailer finds it, then half-written while the
    // application goes on writing to the original.
    let mut out = File::create(&copy).unwrap();
    tailer.quiet(Duration::from_millis(200));
    let bytes = fs::read(&path).unwrap();
    let half = bytes.len() / 2;
    out.write_all(&bytes[..half]).unwrap();
    append(&path, &numbered("read", 0..5));
    // Nothing of the copy is read while it may be one; the original's new lines are.
    let got = tailer.lines(5);
    assert_eq!(sorted(&got), expected(&[("read", 0..5)]));
    assert!(got.iter().all(|l| *l.path == *path));
    tailer.quiet(Duration::from_millis(300));
    // More lines, unread when the copy completes and the original is truncated: the copy
    // carries them.
    append(&path, &numbered("window", 0..4));
    let bytes = fs::read(&path).unwrap();
    out.write_all(&bytes[half..]).unwrap();
    truncate(&path);
    append(&path, &numbered("after", 0..3));
    assert_eq!(
        sorted(&tailer.lines(7)),
        expected(&[("window", 0..4), ("after", 0..3)])
    );
    tailer.quiet(Duration::from_millis(500));
}

#[test]
fn a_copy_of_a_followed_file_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let backup = dir.path().join("app.log.bak");
    append(&path, &numbered("first", 0..40));
    let mut tailer = start(
        vec![input(&dir.path().join("app.log*"), StartAt::Beginning)],
        vec![],
        true,
    );
    tailer.lines(40);
    fs::copy(&path, &backup).unwrap();
    append(&path, "more 00000\n");
    assert_eq!(texts(&tailer.lines(1)), ["more 00000"]);
    tailer.quiet(Duration::from_millis(1500));
    let copied = fs::metadata(&backup).unwrap();
    let checkpoint = tailer
        .checkpoints()
        .into_iter()
        .find(|cp| cp.path == backup)
        .unwrap();
    assert_eq!(
        checkpoint.offset,
        copied.len(),
        "the copy counts as read as far as the original was"
    );
}

#[test]
fn a_rewrite_with_the_same_banner_while_followed_is_read_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, &(banner() + &numbered("old", 0..10)));
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    tailer.lines(BANNER_LINES + 10);
    // Truncated and written again, longer than before, between two looks (a paused daemon).
    fs::write(&path, banner() + &numbered("new", 0..20)).unwrap();
    let got = tailer.lines(BANNER_LINES + 20);
    let new: Vec<&str> = texts(&got)
        .into_iter()
        .filter(|t| !t.starts_with('#'))
        .collect();
    assert_eq!(
        new.len(),
        20,
        "every new line, not only those past the old end"
    );
    assert_eq!(new[0], "new 00000");
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_rewrite_with_the_same_banner_while_down_is_read_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, &(banner() + &numbered("old", 0..10)));
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    tailer.lines(BANNER_LINES + 10);
    let saved = tailer.checkpoints();
    assert!(saved[0].tail.is_some());
    drop(tailer);
    fs::write(&path, banner() + &numbered("new", 0..20)).unwrap();
    let mut tailer = start(vec![input(&path, StartAt::End)], saved.clone(), false);
    let got = tailer.lines(BANNER_LINES + 20);
    assert_eq!(got.iter().filter(|l| l.text.starts_with("new")).count(), 20);

    // The same content grown while down resumes where it was.
    let saved = tailer.checkpoints();
    drop(tailer);
    append(&path, &numbered("more", 0..2));
    let mut tailer = start(vec![input(&path, StartAt::End)], saved, false);
    assert_eq!(sorted(&tailer.lines(2)), expected(&[("more", 0..2)]));
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_new_file_with_the_same_banner_is_new_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, &(banner() + &numbered("old", 0..10)));
    let glob = dir.path().join("app.log*");
    let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
    tailer.lines(BANNER_LINES + 10);
    // Rotated by rename; the application starts a new file with the same banner, shorter and
    // longer than the old one.
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, &(banner() + &numbered("new", 0..3)));
    let got = tailer.lines(BANNER_LINES + 3);
    assert_eq!(got.iter().filter(|l| l.text.starts_with("new")).count(), 3);
    fs::rename(&path, dir.path().join("app.log.2")).unwrap();
    append(&path, &(banner() + &numbered("newer", 0..30)));
    let got = tailer.lines(BANNER_LINES + 30);
    assert_eq!(
        got.iter().filter(|l| l.text.starts_with("newer")).count(),
        30
    );
    tailer.quiet(Duration::from_millis(300));
}

#[test]
fn a_file_renamed_out_of_a_narrow_glob_while_down_is_drained_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, &numbered("first", 0..40));
    let mut tailer = start(vec![input(&path, StartAt::Beginning)], vec![], true);
    tailer.lines(40);
    let saved = tailer.checkpoints();
    drop(tailer);
    // While down: lines, a create-mode rotation, lines in the new file.
    append(&path, &numbered("unread", 0..3));
    fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, &numbered("new", 0..2));
    let mut tailer = start(vec![input(&path, StartAt::End)], saved, false);
    let got = tailer.lines(5);
    assert_eq!(sorted(&got), expected(&[("unread", 0..3), ("new", 0..2)]));
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(
        tailer.n_files(),
        1,
        "the rotated file was drained and released"
    );
}

#[test]
fn a_copytruncate_while_down_is_drained_from_the_copy_with_either_glob() {
    for wide in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let glob = if wide {
            dir.path().join("app.log*")
        } else {
            path.clone()
        };
        append(&path, &numbered("first", 0..40));
        let mut tailer = start(vec![input(&glob, StartAt::Beginning)], vec![], true);
        tailer.lines(40);
        let saved = tailer.checkpoints();
        drop(tailer);
        append(&path, &numbered("unread", 0..3));
        copytruncate(&path, &dir.path().join("app.log.1"));
        append(&path, &numbered("after", 0..2));
        let mut tailer = start(vec![input(&glob, StartAt::End)], saved, false);
        let got = tailer.lines(5);
        assert_eq!(
            sorted(&got),
            expected(&[("unread", 0..3), ("after", 0..2)]),
            "wide glob: {wide}"
        );
        tailer.quiet(Duration::from_millis(1500));
    }
}

#[test]
fn a_checkpoint_carries_the_hash_of_the_bytes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut config = input(&path, StartAt::Beginning);
    config.multiline = Some(MultilineConfig {
        start: regex::Regex::new(r"^\S").unwrap(),
        max_lines: 100,
        timeout: Duration::from_secs(60),
    });
    append(&path, &(numbered("line", 0..30) + "held\n  continued\n"));
    let mut tailer = start(vec![config], vec![], true);
    tailer.lines(30);
    let checkpoint = tailer.checkpoints().remove(0);
    let file = File::open(&path).unwrap();
    assert_eq!(
        checkpoint.offset, 330,
        "before the event still being joined"
    );
    assert_eq!(
        checkpoint.tail,
        TailHash::at(&file, 330).unwrap(),
        "the bytes before the offset, not before the read position"
    );
    append(&path, "next\n");
    tailer.lines(1);
    let checkpoint = tailer.checkpoints().remove(0);
    assert_eq!(checkpoint.offset, 347, "before `next`, held in turn");
    assert_eq!(checkpoint.tail, TailHash::at(&file, 347).unwrap());
}

#[test]
fn files_that_start_alike_are_separate_files() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        append(&dir.path().join(format!("svc{i}.log")), "service started\n");
    }
    let mut tailer = start(
        vec![input(&dir.path().join("*.log"), StartAt::Beginning)],
        vec![],
        true,
    );
    assert_eq!(tailer.lines(5).len(), 5);
    for i in 0..5 {
        append(&dir.path().join(format!("svc{i}.log")), "service stopped\n");
    }
    // A new file with the same first line, found while the others are followed.
    append(&dir.path().join("svc9.log"), "service started\n");
    let got = tailer.lines(6);
    assert_eq!(
        got.iter().filter(|l| l.text == "service stopped").count(),
        5
    );
    assert!(got.iter().any(|l| *l.path == *dir.path().join("svc9.log")));
    tailer.quiet(Duration::from_millis(300));
}
