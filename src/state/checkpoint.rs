//! The SQL of checkpoints: one row per followed file, keyed by device and inode (a file's
//! fingerprint may grow as the file does, its inode does not).
//!
//! Integers are stored as SQLite's signed 64-bit values by reinterpreting the bits, so every
//! `u64` round-trips exactly. Paths are stored as bytes: a Unix path need not be UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rusqlite::{Connection, params};

use crate::state::StateError;
use crate::tail::checkpoint::Checkpoint;
use crate::tail::fingerprint::Fingerprint;

/// Replaces the stored checkpoints with `checkpoints`, the tailer's complete view
/// (`Tailer::checkpoints`): files it no longer follows lose their row. Call it inside
/// `Store::transaction`, after the consequences of the lines before these offsets.
///
/// # Errors
/// SQLite failures.
pub fn save_checkpoints(conn: &Connection, checkpoints: &[Checkpoint]) -> Result<(), StateError> {
    conn.execute("DELETE FROM checkpoints", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO checkpoints (dev, ino, head_len, head_hash, path, offset)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for cp in checkpoints {
        let fp = &cp.fingerprint;
        insert.execute(params![
            to_sql(fp.dev),
            to_sql(fp.ino),
            to_sql(fp.head_len),
            to_sql(fp.head_hash),
            cp.path.as_os_str().as_bytes(),
            to_sql(cp.offset),
        ])?;
    }
    Ok(())
}

/// Every stored checkpoint.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection) -> Result<Vec<Checkpoint>, StateError> {
    let mut select =
        conn.prepare("SELECT dev, ino, head_len, head_hash, path, offset FROM checkpoints")?;
    let rows = select.query_map([], |row| {
        let path: Vec<u8> = row.get(4)?;
        Ok(Checkpoint {
            fingerprint: Fingerprint {
                dev: from_sql(row.get(0)?),
                ino: from_sql(row.get(1)?),
                head_len: from_sql(row.get(2)?),
                head_hash: from_sql(row.get(3)?),
            },
            path: PathBuf::from(OsStr::from_bytes(&path)),
            offset: from_sql(row.get(5)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn to_sql(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

fn from_sql(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::state::{StateError, Store, save_checkpoints};
    use crate::tail::checkpoint::Checkpoint;
    use crate::tail::fingerprint::Fingerprint;

    fn checkpoint(ino: u64, offset: u64) -> Checkpoint {
        Checkpoint {
            fingerprint: Fingerprint {
                dev: u64::MAX - 1,
                ino,
                head_len: 256,
                head_hash: 0xdead_beef_f00d_cafe,
            },
            path: PathBuf::from(format!("/var/log/app-{ino}.log")),
            offset,
        }
    }

    #[test]
    fn round_trip_through_a_reopened_store() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("nested/state");
        let mut store = Store::open(&state_dir).unwrap();
        assert!(store.is_first_start());
        let saved = vec![checkpoint(1, 10), checkpoint(u64::MAX, 1 << 40)];
        store
            .transaction(|tx| save_checkpoints(tx, &saved))
            .unwrap();
        // The tailer's next view no longer has file 1: its row goes.
        store
            .transaction(|tx| save_checkpoints(tx, &saved[1..]))
            .unwrap();
        drop(store);

        let store = Store::open(&state_dir).unwrap();
        assert!(
            !store.is_first_start(),
            "the second open is not a first start"
        );
        assert_eq!(store.load_checkpoints().unwrap(), saved[1..].to_vec());
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let result: Result<(), StateError> = store.transaction(|tx| {
            save_checkpoints(tx, &[checkpoint(3, 30)])?;
            Err(StateError::Sql(rusqlite::Error::InvalidQuery))
        });
        assert!(result.is_err());
        assert!(store.load_checkpoints().unwrap().is_empty());
    }

    #[test]
    fn a_database_from_a_newer_dingtail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::TooNew { found: 99, .. }), "{err}");
    }
}
