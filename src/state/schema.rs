//! The persisted shape and its versions. `PRAGMA user_version` holds the number of migrations
//! applied; each migration runs in its own transaction together with the version bump, so a
//! crash leaves the database at one version or the next, never between.
//!
//! Migrations are only ever appended. A database with a higher version than this build knows was
//! written by a newer dingtail and is refused rather than misread.

use rusqlite::Connection;

use crate::state::{alerts, cursors, globs, pending, sends, silences, throttles};

/// Version 1: checkpoints keyed by device and inode (one row per followed file), and the
/// pending batches.
const V1_CHECKPOINTS: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    head_len INTEGER NOT NULL,
    head_hash INTEGER NOT NULL,
    path BLOB NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (dev, ino)
);";

/// Version 5: a checkpoint also carries the hash of the bytes just before its offset (issue 19:
/// copies and look-alike rewrites are told apart by content). Existing rows get NULL: "no tail
/// hash", which identifies by device, inode and head as before.
const V5_TAIL_HASH: &str = "
ALTER TABLE checkpoints ADD COLUMN tail_len INTEGER;
ALTER TABLE checkpoints ADD COLUMN tail_hash INTEGER;";

/// The migrations, in order; migration `i` brings the database to version `i + 1`.
/// Version 2 adds the send history that carries the rate limit over restarts; version 3 the
/// globs each input has scanned; version 4 the throttle blocks (issue 12); version 5 the
/// checkpoints' tail hashes (issue 19); version 6 the journald inputs' cursors (issue 14);
/// version 7 the alert kinds' keys and the silences (issue 13).
const MIGRATIONS: &[&[&str]] = &[
    &[V1_CHECKPOINTS, pending::CREATE_TABLE],
    &[sends::CREATE_TABLE],
    &[globs::CREATE_TABLE],
    &[throttles::CREATE_TABLE],
    &[V5_TAIL_HASH],
    &[cursors::CREATE_TABLE],
    &[alerts::CREATE_TABLE, silences::CREATE_TABLES],
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Why a migration failed.
#[derive(Debug)]
pub enum MigrateError {
    /// The database is newer than this build.
    TooNew {
        /// Its version.
        found: u32,
        /// [`VERSION`].
        known: u32,
    },
    /// SQLite failed.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(err: rusqlite::Error) -> MigrateError {
        MigrateError::Sql(err)
    }
}

/// Brings the database to [`VERSION`]; returns the version it had before.
///
/// # Errors
/// The database is newer than this build, or SQLite failed.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrateError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > VERSION {
        return Err(MigrateError::TooNew {
            found,
            known: VERSION,
        });
    }
    for (version, statements) in (1..).zip(MIGRATIONS.iter()).skip(found as usize) {
        let tx = conn.transaction()?;
        for statement in *statements {
            tx.execute_batch(statement)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(found)
}
