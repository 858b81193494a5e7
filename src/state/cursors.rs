//! Where each journald input is in the journal (issue 14): the cursor of the last entry whose
//! matches are stored, committed in the same transaction as those matches, so that a restart
//! (or a `kill -9`) resumes just after it: no entry lost, none read twice.
//!
//! One row per journald input. Before its first entry an input has no cursor, only the time it
//! first started reading: with `start_at: end`, a restart before any entry came then reads
//! from that time instead of from the new end, so that nothing logged meanwhile is skipped.
//! Each commit that moves a cursor writes the whole set (a handful of rows), which also drops
//! the rows of inputs no longer configured.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use crate::state::StateError;

/// The table, created by schema version 6.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS journal_cursors (
    input TEXT PRIMARY KEY,
    cursor TEXT,
    since_us INTEGER NOT NULL
);";

/// One journald input's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalCursor {
    /// journalctl's `__CURSOR` of the last entry handled (opaque); `None` before the first.
    pub cursor: Option<String>,
    /// When the input first started reading without a cursor.
    pub since: SystemTime,
}

fn micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Every stored position, by input name.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection) -> Result<BTreeMap<String, JournalCursor>, StateError> {
    let mut select = conn.prepare("SELECT input, cursor, since_us FROM journal_cursors")?;
    let mut rows = select.query([])?;
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let input: String = row.get(0)?;
        let cursor: Option<String> = row.get(1)?;
        let since_us: i64 = row.get(2)?;
        let since = UNIX_EPOCH + Duration::from_micros(u64::try_from(since_us).unwrap_or(0));
        out.insert(input, JournalCursor { cursor, since });
    }
    Ok(out)
}

/// Replaces the stored positions with `cursors`.
///
/// # Errors
/// SQLite failures.
pub fn save(
    conn: &Connection,
    cursors: &BTreeMap<String, JournalCursor>,
) -> Result<(), StateError> {
    conn.execute("DELETE FROM journal_cursors", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal_cursors (input, cursor, since_us) VALUES (?1, ?2, ?3)",
    )?;
    for (input, position) in cursors {
        insert.execute(params![input, position.cursor, micros(position.since)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::state::cursors::JournalCursor;
    use crate::state::{Change, Store};

    #[test]
    fn cursors_round_trip_through_commits_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let since = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let mut first = BTreeMap::new();
        first.insert(
            "journal".to_string(),
            JournalCursor {
                cursor: None,
                since,
            },
        );
        first.insert(
            "sshd".to_string(),
            JournalCursor {
                cursor: Some("s=1f69;i=2;b=0;m=0;t=60a;x=da91".into()),
                since,
            },
        );
        let mut store = Store::open(dir.path()).unwrap();
        assert!(store.load_journal_cursors().unwrap().is_empty());
        store.commit(&[Change::JournalCursors(&first)]).unwrap();
        assert_eq!(store.load_journal_cursors().unwrap(), first);
        // A later set replaces the whole table: an input no longer configured loses its row.
        let mut second = first.clone();
        second.remove("journal");
        if let Some(position) = second.get_mut("sshd") {
            position.cursor = Some("s=1f69;i=3".into());
        }
        store.commit(&[Change::JournalCursors(&second)]).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_journal_cursors().unwrap(), second);
    }
}
