//! Parking on the fake clock (issue 19): more files than the descriptor budget are all read,
//! parked files are reopened when they grow, are truncated or are rotated away; files that are
//! not text are skipped and counted once.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Duration;

use crate::config::StartAt;

use super::{append, input, start, texts, truncate};

fn sorted(lines: &[crate::event::LogLine]) -> Vec<String> {
    let mut texts: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
    texts.sort();
    texts
}

#[test]
fn more_files_than_the_budget_are_all_read_and_parked_ones_wake_when_they_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut tailer = start(
        vec![input(&dir.path().join("*.log"), StartAt::Beginning)],
        vec![],
        true,
    );
    tailer.max_open = 3;
    for i in 0..10 {
        append(
            &dir.path().join(format!("f{i}.log")),
            &format!("f{i} line 0\n"),
        );
    }
    let want: Vec<String> = (0..10).map(|i| format!("f{i} line 0")).collect();
    assert_eq!(sorted(&tailer.lines(10)), want);
    assert!(tailer.n_open <= 3, "{} open", tailer.n_open);
    assert_eq!(tailer.stats().n_parked, 7);
    assert_eq!(tailer.stats().n_files, 10);

    for i in 0..10 {
        append(
            &dir.path().join(format!("f{i}.log")),
            &format!("f{i} line 1\n"),
        );
    }
    let want: Vec<String> = (0..10).map(|i| format!("f{i} line 1")).collect();
    assert_eq!(sorted(&tailer.lines(10)), want, "each once, none lost");
    assert!(tailer.n_open <= 3, "{} open", tailer.n_open);
    tailer.quiet(Duration::from_millis(500));
    // Positions are kept while parked: every checkpoint is at its file's end.
    for checkpoint in tailer.checkpoints() {
        assert_eq!(
            checkpoint.offset,
            fs::metadata(&checkpoint.path).unwrap().len()
        );
        assert!(checkpoint.tail.is_some());
    }
}

#[test]
fn a_parked_file_truncated_or_rotated_away_is_read_as_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    append(&a, "a 0\n");
    append(&b, "b 0\n");
    let mut tailer = start(
        vec![input(&dir.path().join("*.log"), StartAt::Beginning)],
        vec![],
        true,
    );
    tailer.max_open = 1;
    tailer.lines(2);
    tailer.quiet(Duration::from_millis(300));
    let parked = |tailer: &super::Harness| {
        tailer
            .files
            .values()
            .find(|f| f.file.is_none())
            .map(|f| f.path().to_path_buf())
            .unwrap()
    };
    // Truncated and rewritten while parked: read from the start.
    let path = parked(&tailer);
    fs::write(&path, "again\n").unwrap();
    assert_eq!(texts(&tailer.lines(1)), ["again"]);
    tailer.quiet(Duration::from_millis(300));

    // Rotated out of the glob while parked; the application writes a last line to it.
    let path = parked(&tailer);
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    let rotated = path.with_extension("log.1");
    fs::rename(&path, &rotated).unwrap();
    old.write_all(b"late\n").unwrap();
    let got = tailer.lines(1);
    assert_eq!(texts(&got), ["late"]);
    assert_eq!(*got[0].path, *rotated);
    drop(old);
    tailer.quiet(Duration::from_millis(1500));
    assert_eq!(tailer.n_files(), 1, "drained and released");
}

#[test]
fn compressed_and_binary_files_are_skipped_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("app.log"), "text\n");
    fs::write(dir.path().join("app.log.2.gz"), [0x1f, 0x8b, 8, 0, b'x']).unwrap();
    // Compressed without the name saying so, and binary.
    fs::write(dir.path().join("sneaky.log"), [0x1f, 0x8b, 8, 0, b'\n']).unwrap();
    fs::write(
        dir.path().join("core.log"),
        b"\x7fELF\x02\x01\x01\0\0\0\nERROR\n",
    )
    .unwrap();
    fs::write(dir.path().join("later.log"), b"").unwrap();
    let mut tailer = start(
        vec![input(&dir.path().join("*"), StartAt::Beginning)],
        vec![],
        true,
    );
    assert_eq!(texts(&tailer.lines(1)), ["text"]);
    tailer.quiet(Duration::from_millis(300));
    let stats = tailer.stats();
    assert_eq!((stats.n_compressed, stats.n_binary), (1, 1));
    // app.log and the empty later.log.
    assert_eq!(stats.n_files, 2);
    // A file empty when found is judged when it has bytes.
    fs::write(dir.path().join("later.log"), b"\0\0\0\0binary\n").unwrap();
    append(&dir.path().join("core.log"), "ERROR more\n");
    tailer.quiet(Duration::from_millis(500));
    let stats = tailer.stats();
    assert_eq!((stats.n_compressed, stats.n_binary), (1, 2), "each once");
    assert_eq!(stats.n_files, 1);
}

#[test]
fn a_copy_of_a_parked_file_made_while_it_is_found_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..40).map(|i| format!("first {i:05}\n")).collect();
    append(&dir.path().join("a.log"), &lines);
    append(&dir.path().join("b.log"), &lines.replace("first", "other"));
    let mut tailer = start(
        vec![input(&dir.path().join("*.log*"), StartAt::Beginning)],
        vec![],
        true,
    );
    tailer.max_open = 1;
    tailer.lines(80);
    tailer.quiet(Duration::from_millis(300));
    let path = tailer
        .files
        .values()
        .find(|f| f.file.is_none())
        .map(|f| f.path().to_path_buf())
        .unwrap();
    // logrotate copies the parked file: found half-written, then completed; then truncates.
    let bytes = fs::read(&path).unwrap();
    let copy = path.with_extension("log.1");
    fs::write(&copy, &bytes[..bytes.len() / 2]).unwrap();
    tailer.quiet(Duration::from_millis(300));
    let mut out = OpenOptions::new().append(true).open(&copy).unwrap();
    out.write_all(&bytes[bytes.len() / 2..]).unwrap();
    truncate(&path);
    append(&path, "after\n");
    assert_eq!(texts(&tailer.lines(1)), ["after"]);
    tailer.quiet(Duration::from_millis(500));
}
