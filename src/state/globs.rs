//! Which globs of which input have been scanned, so that `start_at` applies to an input or path
//! added to the config even across a restart (a file first found through a glob that no earlier
//! run scanned is old content; one that appears later under a scanned glob is new).

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use crate::state::StateError;

/// The table, created by schema version 3.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS scanned_globs (
    input TEXT NOT NULL,
    glob TEXT NOT NULL,
    PRIMARY KEY (input, glob)
);";

/// Every stored `(input, glob)` pair.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection) -> Result<BTreeSet<(String, String)>, StateError> {
    let mut select = conn.prepare("SELECT input, glob FROM scanned_globs")?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the stored pairs with `globs`.
///
/// # Errors
/// SQLite failures.
pub fn save(conn: &Connection, globs: &BTreeSet<(String, String)>) -> Result<(), StateError> {
    conn.execute("DELETE FROM scanned_globs", [])?;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO scanned_globs (input, glob) VALUES (?1, ?2)")?;
    for (input, glob) in globs {
        insert.execute(params![input, glob])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::state::Store;
    use crate::state::globs::{load, save};

    #[test]
    fn scanned_globs_round_trip_and_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let first: BTreeSet<(String, String)> = [("a".into(), "/x/*.log".into())].into();
        store.transaction(|tx| save(tx, &first)).unwrap();
        assert_eq!(load(store.connection()).unwrap(), first);
        let second: BTreeSet<(String, String)> = [("b".into(), "/y/*.log".into())].into();
        store.transaction(|tx| save(tx, &second)).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(load(store.connection()).unwrap(), second);
    }
}
