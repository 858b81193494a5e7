//! `Dir`: a fresh directory per test, and helpers to run the real `dingtail` binary in it. A
//! failing command panics with the command, directory, status, stdout and stderr.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory, removed when dropped.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    /// A new empty directory; `name` appears in its path to tell tests apart.
    pub fn new(name: &str) -> Dir {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("dingtail-{name}-"))
            .tempdir()
            .expect("create temp dir");
        Dir { tmp }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `path` joined to the directory.
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(path)
    }

    /// Writes `contents` to `path` (creating parent folders) and returns the full path.
    pub fn create(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let full = self.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&full, contents).expect("write file");
        full
    }

    /// A `dingtail` command that runs in this directory with a clean dingtail environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(self.path());
        cmd.env_remove("DINGTAIL_WEBHOOK")
            .env_remove("DINGTAIL_SECRET");
        // `DINGTAIL_TEST_LOG=info,dingtail::tail=debug` to see more in a failure's stderr.
        let log = std::env::var("DINGTAIL_TEST_LOG").unwrap_or_else(|_| "info".into());
        cmd.env("RUST_LOG", log);
        cmd
    }
}

/// The path of the `dingtail` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dingtail"))
}

/// Renders a command and its output for a failure message.
pub fn describe(cmd: &Command, output: &Output) -> String {
    format!(
        "\n\ncommand: {:?}\ndir: {:?}\nstatus: {}\n\nstdout:\n{}\n\nstderr:\n{}\n",
        cmd,
        cmd.get_current_dir(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `cmd`, asserts it exited with `code`, and returns its output.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let output = cmd.output().expect("spawn dingtail");
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status{}",
        describe(cmd, &output)
    );
    output
}

/// Runs `cmd`, asserts success, and returns stdout as a string.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let output = run_expect(cmd, 0);
    String::from_utf8_lossy(&output.stdout).into_owned()
}
