//! `dingtail tail` against real files: creation, deletion, re-creation, many files, bad input,
//! permissions, symlinks, signals and config errors. (Rotation floods with the real logrotate
//! are in the e2e binary.)

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::follow::Follow;
use crate::support::harness::{Dir, run_expect};

const WAIT: Duration = Duration::from_secs(10);

/// A config with one input `app` over `glob`, read from the beginning, polled every 100 ms.
fn config(dir: &Dir, glob: &Path, extra: &str) -> PathBuf {
    dir.create(
        "dingtail.yaml",
        format!(
            "state_dir: {}\ninputs:\n  app:\n    paths: [\"{}\"]\n    start_at: beginning\n    poll_interval: 100ms\n{extra}",
            dir.join("state").display(),
            glob.display()
        ),
    )
}

fn append(path: &Path, text: impl AsRef<[u8]>) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_ref()).unwrap();
}

fn count(lines: &[String], wanted: &str) -> usize {
    lines.iter().filter(|l| *l == wanted).count()
}

fn printed(path: &Path, text: &str) -> String {
    format!("{}: {text}", path.display())
}

#[test]
fn files_created_deleted_and_recreated_are_read_once_each_and_released() {
    let dir = Dir::new("tail-recreate");
    let logs = dir.join("logs");
    fs::create_dir(&logs).unwrap();
    let path = logs.join("app.log");
    let config = config(&dir, &logs.join("*.log"), "");
    let tail = Follow::tail(&dir, &config);
    append(&path, "first life 1\nfirst life 2\n");
    tail.wait_lines(2, WAIT);
    fs::remove_file(&path).unwrap();
    append(&path, "second life\n");
    tail.wait_lines(3, WAIT);

    // The deleted file's descriptor is closed once drained (grace: 1 s at this poll interval).
    let fd_dir = format!("/proc/{}/fd", tail.pid());
    let deleted_fds = || {
        fs::read_dir(&fd_dir)
            .unwrap()
            .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
            .filter(|target| target.to_string_lossy().ends_with(" (deleted)"))
            .count()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while deleted_fds() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a deleted file is still open{}",
            tail.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    append(&path, "still followed\n");
    tail.wait_lines(4, WAIT);
    let lines = tail.stop();
    for text in [
        "first life 1",
        "first life 2",
        "second life",
        "still followed",
    ] {
        assert_eq!(
            count(&lines, &printed(&path, text)),
            1,
            "{text}: {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 4, "{lines:#?}");
}

#[test]
fn a_glob_over_1000_files_reads_every_file_once() {
    let dir = Dir::new("tail-many");
    let logs = dir.join("logs");
    fs::create_dir(&logs).unwrap();
    for i in 0..1000 {
        fs::write(logs.join(format!("f{i:04}.log")), format!("line of {i}\n")).unwrap();
    }
    let config = config(&dir, &logs.join("*.log"), "");
    let tail = Follow::tail(&dir, &config);
    tail.wait_lines(1000, WAIT);
    for i in (0..1000).step_by(97) {
        append(&logs.join(format!("f{i:04}.log")), format!("more of {i}\n"));
    }
    tail.wait_lines(1011, WAIT);
    let lines = tail.stop();
    assert_eq!(lines.len(), 1011, "nothing twice");
    for i in 0..1000 {
        let path = logs.join(format!("f{i:04}.log"));
        assert_eq!(count(&lines, &printed(&path, &format!("line of {i}"))), 1);
    }
    for i in (0..1000).step_by(97) {
        let path = logs.join(format!("f{i:04}.log"));
        assert_eq!(count(&lines, &printed(&path, &format!("more of {i}"))), 1);
    }
}

#[test]
fn a_10_mb_line_without_newline_is_cut_and_random_bytes_do_no_harm() {
    let dir = Dir::new("tail-junk");
    let logs = dir.join("logs");
    fs::create_dir(&logs).unwrap();
    let long = logs.join("long.log");
    fs::write(&long, vec![b'x'; 10 * 1024 * 1024]).unwrap();
    let junk = logs.join("junk.log");
    let mut random = vec![0u8; 1024 * 1024];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    // No NUL among the first bytes: such a file looks binary and is not followed at all (see
    // not_text.rs); further on, anything goes.
    for byte in random.iter_mut().take(256) {
        if *byte == 0 {
            *byte = 1;
        }
    }
    fs::write(&junk, &random).unwrap();
    let config = config(&dir, &logs.join("*.log"), "    max_line_bytes: 65536\n");
    let tail = Follow::tail(&dir, &config);
    let cut = format!("{}: {} [truncated]", long.display(), "x".repeat(65536));
    tail.wait_for(WAIT, "the cut 10 MB line", |lines| lines.contains(&cut));
    append(&junk, "\nafter the junk\n");
    append(&long, "y\nafter the long line\n");
    tail.wait_for(WAIT, "lines after the junk", |lines| {
        count(lines, &printed(&junk, "after the junk")) == 1
            && count(lines, &printed(&long, "after the long line")) == 1
    });
    let lines = tail.stop();
    let from_long: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&long.display().to_string()))
        .collect();
    assert_eq!(
        from_long.len(),
        2,
        "the rest of the long line is skipped, not printed: {:?}",
        from_long.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.chars().any(|c| c.is_control() && c != '\t')),
        "control characters are escaped"
    );
}

#[test]
fn unreadable_files_and_directories_are_reported_once_and_read_when_they_become_readable() {
    // Tests run as root, for whom permissions are not enforced: run dingtail as `nobody`.
    let dir = Dir::new("tail-perm");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let logs = dir.join("logs");
    fs::create_dir(&logs).unwrap();
    let open = logs.join("open.log");
    let secret = logs.join("secret.log");
    fs::write(&open, "open 1\n").unwrap();
    fs::write(&secret, "secret 1\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let private = logs.join("private");
    fs::create_dir(&private).unwrap();
    let hidden = private.join("hidden.log");
    fs::write(&hidden, "hidden 1\n").unwrap();
    fs::set_permissions(&hidden, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.create(
        "dingtail.yaml",
        format!(
            "inputs:\n  app:\n    paths: [\"{}\", \"{}\"]\n    start_at: beginning\n    poll_interval: 100ms\n",
            logs.join("*.log").display(),
            private.join("*.log").display()
        ),
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::support::harness::bin())
        .arg("tail")
        .arg("-c")
        .arg(&config)
        .current_dir(dir.path())
        .env("RUST_LOG", "info");
    let tail = Follow::spawn(cmd);
    tail.wait_lines(1, WAIT);
    // Several retries happen in this time (every poll interval while a file is unreadable).
    std::thread::sleep(Duration::from_millis(800));
    let stderr = tail.stderr();
    assert_eq!(
        stderr.matches("cannot open file").count(),
        1,
        "warned once{}",
        tail.describe()
    );
    assert!(stderr.contains("secret.log"), "{stderr}");
    assert_eq!(
        stderr.matches("cannot list directory").count(),
        1,
        "warned once{}",
        tail.describe()
    );
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).unwrap();
    tail.wait_for(WAIT, "the file and directory made readable", |lines| {
        count(lines, &printed(&secret, "secret 1")) == 1
            && count(lines, &printed(&hidden, "hidden 1")) == 1
    });
    let mut lines = tail.stop();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            printed(&open, "open 1"),
            printed(&hidden, "hidden 1"),
            printed(&secret, "secret 1"),
        ]
    );
}

#[test]
fn symlinks_are_followed_and_a_file_reached_twice_is_read_once() {
    let dir = Dir::new("tail-symlink");
    let logs = dir.join("logs");
    let elsewhere = dir.join("elsewhere");
    fs::create_dir(&logs).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let target = elsewhere.join("real.txt");
    fs::write(&target, "through the link\n").unwrap();
    let link = logs.join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let real = logs.join("a-real.log");
    fs::write(&real, "once\n").unwrap();
    std::os::unix::fs::symlink(&real, logs.join("b-alias.log")).unwrap();
    let config = config(&dir, &logs.join("*.log"), "");
    let tail = Follow::tail(&dir, &config);
    tail.wait_lines(2, WAIT);
    // A write to the target (in a directory the glob does not name) arrives promptly.
    append(&target, "appended to the target\n");
    append(&real, "twice?\n");
    tail.wait_lines(4, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    let lines = tail.stop();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            printed(&real, "once"),
            printed(&real, "twice?"),
            printed(&link, "appended to the target"),
            printed(&link, "through the link"),
        ]
    );
}

#[test]
fn sigint_exits_0_and_a_config_error_exits_1_with_its_position() {
    let dir = Dir::new("tail-exit");
    let path = dir.join("app.log");
    fs::write(&path, "hello\n").unwrap();
    let config = config(&dir, &path, "");
    let tail = Follow::tail(&dir, &config);
    tail.wait_lines(1, WAIT);
    let status = tail.stop_with("INT");
    assert_eq!(status.code(), Some(0));

    let bad = dir.create(
        "bad.yaml",
        "inputs:\n  app:\n    paths: [\"/x/*.log\"]\n    start_at: middle\n",
    );
    let mut cmd = dir.command();
    cmd.arg("tail").arg("-c").arg(&bad);
    // Invalid configuration: 1, as for every command (issue 12).
    let output = run_expect(&mut cmd, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml:4:"), "{stderr}");
    assert!(stderr.contains("start_at"), "{stderr}");

    let mut cmd = dir.command();
    cmd.args(["tail", "--input", "nope", "-c"]).arg(&config);
    let output = run_expect(&mut cmd, 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no input named `nope`"));
}

#[test]
fn multiline_events_are_printed_on_one_line() {
    let dir = Dir::new("tail-multiline");
    let path = dir.join("app.log");
    let config = config(
        &dir,
        &path,
        "    multiline:\n      start: '^\\d{4}-'\n      timeout: 200ms\n",
    );
    fs::write(
        &path,
        "2024-01-01 boom\n\tat a.b(C.java:1)\n2024-01-01 ok\n",
    )
    .unwrap();
    let tail = Follow::tail(&dir, &config);
    tail.wait_lines(2, WAIT);
    let lines = tail.stop();
    assert_eq!(
        lines,
        vec![
            printed(&path, "2024-01-01 boom\\n\tat a.b(C.java:1)"),
            printed(&path, "2024-01-01 ok"),
        ]
    );
}
