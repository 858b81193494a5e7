//! The database file itself: created private (the state holds sample log lines), checked before
//! use, and moved aside when it is damaged so that alerting goes on with a fresh one.
//!
//! A database is damaged when it is empty (a 0-byte file is not a first start: the state that
//! was there is gone), when SQLite says it is not a database or is corrupt, when `PRAGMA
//! quick_check` finds a fault, or when its schema version claims tables it does not have. A
//! damaged file (with its `-wal` and `-shm`) is renamed `state.db.damaged-<UTC time>` and kept
//! for a post-mortem; nothing is ever deleted.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::state::schema;

/// The tables every database of a version ≥ 1 holds.
const TABLES: &[&str] = &["checkpoints", "pending"];

/// Why a database file cannot be used as it is.
#[derive(Debug)]
pub enum Damage {
    /// The file is empty.
    Empty,
    /// SQLite refuses it or finds it damaged.
    Corrupt(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Empty => f.write_str("the file is empty"),
            Damage::Corrupt(what) => write!(f, "it is damaged ({what})"),
        }
    }
}

/// Creates `dir` (and its parents) readable by the owner only, if it does not exist.
///
/// # Errors
/// What the OS said.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates the database file readable and writable by the owner only, if it does not exist
/// (SQLite gives its `-wal` and `-shm` files the same permissions).
///
/// # Errors
/// What the OS said.
pub fn create_private(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Checks an existing database file before it is used. `Ok(())` when it is usable (or does
/// not exist yet); `Err(None)` when it cannot even be looked at (the caller reports the I/O
/// error); `Err(Some(damage))` when it is damaged.
pub fn check(path: &Path) -> Result<(), Option<Damage>> {
    match fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Err(Some(Damage::Empty)),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => return Err(None),
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(conn) => conn,
        Err(err) if is_corrupt(&err) => return Err(Some(Damage::Corrupt(err.to_string()))),
        Err(_) => return Err(None),
    };
    let verdict: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA quick_check")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match verdict {
        Ok(lines) if lines.len() == 1 && lines.first().is_some_and(|l| l == "ok") => {}
        Ok(lines) => return Err(Some(Damage::Corrupt(lines.join("; ")))),
        Err(err) if is_corrupt(&err) => return Err(Some(Damage::Corrupt(err.to_string()))),
        Err(_) => return Err(None),
    }
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|err| is_corrupt(&err).then(|| Damage::Corrupt(err.to_string())))?;
    if version == 0 || version > schema::VERSION {
        // A new database, or a newer dingtail's: migration decides.
        return Ok(());
    }
    for table in TABLES {
        let found: Result<i64, rusqlite::Error> = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get(0),
        );
        match found {
            Ok(1) => {}
            Ok(_) => {
                return Err(Some(Damage::Corrupt(format!(
                    "schema version {version} without the `{table}` table"
                ))));
            }
            Err(err) if is_corrupt(&err) => return Err(Some(Damage::Corrupt(err.to_string()))),
            Err(_) => return Err(None),
        }
    }
    Ok(())
}

/// Renames the database file and its `-wal` and `-shm` companions aside; returns the new name
/// of the database file.
///
/// # Errors
/// What the OS said about renaming the database file itself.
pub fn move_aside(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace([':', '-'], "");
    let aside = PathBuf::from(format!("{}.damaged-{stamp}", path.display()));
    fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let companion = PathBuf::from(format!("{}{suffix}", path.display()));
        let companion_aside = PathBuf::from(format!("{}{suffix}", aside.display()));
        match fs::rename(&companion, &companion_aside) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(
                    file = %companion.display(),
                    error = %err,
                    "cannot move a damaged state file aside; removing it"
                );
                // A stale WAL applied to the fresh database would damage it again.
                if let Err(err) = fs::remove_file(&companion) {
                    tracing::warn!(file = %companion.display(), error = %err, "cannot remove it");
                }
            }
        }
    }
    Ok(aside)
}

/// True when SQLite says the file is not a database or is corrupt.
pub fn is_corrupt(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    use crate::state::file::{Damage, check, create_dir, create_private, move_aside};

    #[test]
    fn the_state_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        create_dir(&state).unwrap();
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        create_private(&state.join("state.db")).unwrap();
        assert_eq!(mode(&state.join("state.db")), 0o600);
    }

    #[test]
    fn empty_garbage_and_missing_tables_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        assert!(check(&path).is_ok(), "a missing file is a first start");
        fs::write(&path, "").unwrap();
        assert!(matches!(check(&path), Err(Some(Damage::Empty))));
        fs::write(&path, vec![0xAB; 8192]).unwrap();
        assert!(matches!(check(&path), Err(Some(Damage::Corrupt(_)))));
        fs::remove_file(&path).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);
        let Err(Some(Damage::Corrupt(why))) = check(&path) else {
            panic!("a version without its tables is damage");
        };
        assert!(why.contains("checkpoints"), "{why}");
    }

    #[test]
    fn moving_aside_keeps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        fs::write(&path, "x").unwrap();
        fs::write(dir.path().join("state.db-wal"), "w").unwrap();
        let aside = move_aside(&path, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(aside, dir.path().join("state.db.damaged-19700101T000000Z"));
        assert_eq!(fs::read_to_string(&aside).unwrap(), "x");
        assert!(!path.exists());
        assert!(
            dir.path()
                .join("state.db.damaged-19700101T000000Z-wal")
                .exists()
        );
    }
}
