//! The SQL of checkpoints: one row per followed file, keyed by device and inode (a file's
//! fingerprint may grow as the file does, its inode does not).
//!
//! Two ways to write them: [`save_checkpoints`] replaces the table with the tailer's complete
//! view (simple, one row per file per call), [`save_checkpoint_changes`] writes only the rows a
//! `CheckpointLedger` found changed (what the daemon does on every batch, so that a one-line
//! batch costs one row whatever the number of followed files).
//!
//! Integers are stored as SQLite's signed 64-bit values by reinterpreting the bits, so every
//! `u64` round-trips exactly. Paths are stored as bytes: a Unix path need not be UTF-8. The tail
//! hash (schema version 5) is two nullable columns: NULL is "no tail hash" (rows written before).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rusqlite::{Connection, params};

use crate::state::StateError;
use crate::tail::checkpoint::{Checkpoint, CheckpointChanges};
use crate::tail::fingerprint::{Fingerprint, TailHash};

/// Replaces the stored checkpoints with `checkpoints`, the tailer's complete view
/// (`Tailer::checkpoints`): files it no longer follows lose their row. Call it inside
/// `Store::transaction`, after the consequences of the lines before these offsets.
///
/// # Errors
/// SQLite failures.
pub fn save_checkpoints(conn: &Connection, checkpoints: &[Checkpoint]) -> Result<(), StateError> {
    conn.execute("DELETE FROM checkpoints", [])?;
    upsert(conn, checkpoints)
}

/// Writes only `changes` (from `CheckpointLedger::changes`): deletes the rows of its removals,
/// inserts or updates the rows of its upserts. Call it inside `Store::transaction`, after the
/// consequences of the lines before these offsets, and `CheckpointLedger::committed` once the
/// transaction committed.
///
/// # Errors
/// SQLite failures.
pub fn save_checkpoint_changes(
    conn: &Connection,
    changes: &CheckpointChanges,
) -> Result<(), StateError> {
    if !changes.removals.is_empty() {
        let mut delete =
            conn.prepare_cached("DELETE FROM checkpoints WHERE dev = ?1 AND ino = ?2")?;
        for &(dev, ino) in &changes.removals {
            delete.execute(params![to_sql(dev), to_sql(ino)])?;
        }
    }
    upsert(conn, &changes.upserts)
}

/// Inserts or updates one row per checkpoint.
fn upsert(conn: &Connection, checkpoints: &[Checkpoint]) -> Result<(), StateError> {
    if checkpoints.is_empty() {
        return Ok(());
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO checkpoints (dev, ino, head_len, head_hash, path, offset, tail_len, tail_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (dev, ino) DO UPDATE SET
             head_len = excluded.head_len,
             head_hash = excluded.head_hash,
             path = excluded.path,
             offset = excluded.offset,
             tail_len = excluded.tail_len,
             tail_hash = excluded.tail_hash",
    )?;
    for cp in checkpoints {
        let fp = &cp.fingerprint;
        upsert.execute(params![
            to_sql(fp.dev),
            to_sql(fp.ino),
            to_sql(fp.head_len),
            to_sql(fp.head_hash),
            cp.path.as_os_str().as_bytes(),
            to_sql(cp.offset),
            cp.tail.map(|tail| to_sql(tail.len)),
            cp.tail.map(|tail| to_sql(tail.hash)),
        ])?;
    }
    Ok(())
}

/// Every stored checkpoint.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection) -> Result<Vec<Checkpoint>, StateError> {
    let mut select = conn.prepare(
        "SELECT dev, ino, head_len, head_hash, path, offset, tail_len, tail_hash FROM checkpoints",
    )?;
    let rows = select.query_map([], |row| {
        let path: Vec<u8> = row.get(4)?;
        let tail_len: Option<i64> = row.get(6)?;
        let tail_hash: Option<i64> = row.get(7)?;
        Ok(Checkpoint {
            fingerprint: Fingerprint {
                dev: from_sql(row.get(0)?),
                ino: from_sql(row.get(1)?),
                head_len: from_sql(row.get(2)?),
                head_hash: from_sql(row.get(3)?),
            },
            path: PathBuf::from(OsStr::from_bytes(&path)),
            offset: from_sql(row.get(5)?),
            tail: tail_len.zip(tail_hash).map(|(len, hash)| TailHash {
                len: from_sql(len),
                hash: from_sql(hash),
            }),
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

    use crate::state::checkpoint::{save_checkpoint_changes, save_checkpoints};
    use crate::state::{StateError, Store};
    use crate::tail::checkpoint::{Checkpoint, CheckpointLedger};
    use crate::tail::fingerprint::{Fingerprint, TailHash};

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
            tail: Some(TailHash {
                len: offset.min(256),
                hash: offset.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }),
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

    fn sorted(mut checkpoints: Vec<Checkpoint>) -> Vec<Checkpoint> {
        checkpoints.sort_by_key(Checkpoint::key);
        checkpoints
    }

    #[test]
    fn incremental_changes_store_what_save_checkpoints_stores() {
        let dir = tempfile::tempdir().unwrap();
        let mut full = Store::open(&dir.path().join("full")).unwrap();
        let mut incremental = Store::open(&dir.path().join("incremental")).unwrap();
        let seed = vec![
            checkpoint(1, 10),
            checkpoint(2, 20),
            checkpoint(u64::MAX, 1),
        ];
        full.transaction(|tx| save_checkpoints(tx, &seed)).unwrap();
        incremental
            .transaction(|tx| save_checkpoints(tx, &seed))
            .unwrap();
        let mut ledger = CheckpointLedger::from_stored(&incremental.load_checkpoints().unwrap());

        let mut renamed = checkpoint(2, 25);
        renamed.path = PathBuf::from("/var/log/app-2.log.1");
        let mut reused = checkpoint(u64::MAX, 0);
        reused.fingerprint.head_hash = 1;
        let views = [
            // Moved, renamed, new, an inode reused by another file.
            vec![checkpoint(1, 11), renamed.clone(), checkpoint(4, 0), reused],
            // File 1 gone, file 4 moved.
            vec![renamed.clone(), checkpoint(4, 40)],
            // Nothing moved.
            vec![renamed, checkpoint(4, 40)],
            // Everything gone, then one back.
            vec![],
            vec![checkpoint(1, 12)],
        ];
        for (i, view) in views.iter().enumerate() {
            full.transaction(|tx| save_checkpoints(tx, view)).unwrap();
            let changes = ledger.changes(view);
            if i == 2 {
                assert!(changes.is_empty(), "{changes:?}");
            }
            incremental
                .transaction(|tx| save_checkpoint_changes(tx, &changes))
                .unwrap();
            ledger.committed(&changes);
            assert_eq!(
                sorted(incremental.load_checkpoints().unwrap()),
                sorted(full.load_checkpoints().unwrap()),
                "view {i}"
            );
            assert_eq!(
                sorted(full.load_checkpoints().unwrap()),
                sorted(view.clone())
            );
        }
    }

    #[test]
    fn changes_of_a_rolled_back_transaction_are_written_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut ledger = CheckpointLedger::default();
        let first = vec![checkpoint(1, 10), checkpoint(2, 20)];
        let changes = ledger.changes(&first);
        store
            .transaction(|tx| save_checkpoint_changes(tx, &changes))
            .unwrap();
        ledger.committed(&changes);

        let second = vec![checkpoint(1, 15)];
        let changes = ledger.changes(&second);
        let result: Result<(), StateError> = store.transaction(|tx| {
            save_checkpoint_changes(tx, &changes)?;
            Err(StateError::Sql(rusqlite::Error::InvalidQuery))
        });
        assert!(result.is_err());
        assert_eq!(sorted(store.load_checkpoints().unwrap()), first);

        let third = vec![checkpoint(1, 15), checkpoint(3, 30)];
        let changes = ledger.changes(&third);
        assert_eq!(
            changes.removals,
            [(u64::MAX - 1, 2)],
            "file 2 still to delete"
        );
        store
            .transaction(|tx| save_checkpoint_changes(tx, &changes))
            .unwrap();
        ledger.committed(&changes);
        assert_eq!(sorted(store.load_checkpoints().unwrap()), third);
        assert!(ledger.changes(&third).is_empty());
    }

    #[test]
    fn rows_from_before_version_5_get_no_tail_hash_and_tail_hashes_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut without = checkpoint(1, 10);
        without.tail = None;
        store
            .transaction(|tx| save_checkpoints(tx, &[without.clone(), checkpoint(2, 300)]))
            .unwrap();
        assert_eq!(
            sorted(store.load_checkpoints().unwrap()),
            [without, checkpoint(2, 300)],
            "a tail hash and its absence both round-trip"
        );
        drop(store);

        // The same database as version 4 wrote it: no tail columns.
        let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE checkpoints DROP COLUMN tail_len;
             ALTER TABLE checkpoints DROP COLUMN tail_hash;
             PRAGMA user_version = 4;",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.is_first_start());
        let loaded = sorted(store.load_checkpoints().unwrap());
        assert_eq!(loaded.len(), 2);
        assert!(
            loaded.iter().all(|cp| cp.tail.is_none()),
            "migrated rows have no tail hash: {loaded:?}"
        );
        assert_eq!(loaded[1].offset, 300, "the rest of the row is kept");
    }

    #[test]
    fn a_checkpoint_whose_offset_did_not_move_is_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut ledger = CheckpointLedger::default();
        let view = vec![checkpoint(1, 10), checkpoint(2, 20)];
        let changes = ledger.changes(&view);
        store
            .transaction(|tx| save_checkpoint_changes(tx, &changes))
            .unwrap();
        ledger.committed(&changes);
        // File 2 moved: its tail hash moved with it; file 1 (same offset, same hash) is not
        // written.
        let moved = vec![checkpoint(1, 10), checkpoint(2, 700)];
        let changes = ledger.changes(&moved);
        assert_eq!(changes.upserts, [checkpoint(2, 700)]);
        store
            .transaction(|tx| save_checkpoint_changes(tx, &changes))
            .unwrap();
        assert_eq!(sorted(store.load_checkpoints().unwrap()), moved);
    }
}
