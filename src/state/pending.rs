//! Pending batches on disk: what each robot has not delivered yet, aggregated per rule, so that a
//! robot unreachable for a day costs one row per (robot, rule), not one per matched line.
//!
//! Rows carry a generation: 0 for what is still gathering, the in-flight id for a batch being
//! sent. Sending moves gen-0 rows to the id; `Delivered` deletes that id; a failure folds the batch
//! back into gen 0. A crash between the send and the delete re-sends that one batch after restart,
//! and nothing else.
//!
//! The functions take a `rusqlite::Connection` (a `Transaction` derefs to one), so that the daemon
//! commits pending rows in the same transaction as the file offsets they came from.

mod row;

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::batch::Batch;

/// The table, created by the schema migration that introduces it.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS pending (
    robot TEXT NOT NULL,
    rule TEXT NOT NULL,
    gen INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (robot, rule, gen)
);";

/// Errors of the pending store.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    /// SQLite failed.
    #[error("pending store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A row could not be encoded or decoded.
    #[error("pending store: bad row for robot `{robot}`, rule `{rule}`: {source}")]
    Row {
        /// The robot.
        robot: String,
        /// The rule.
        rule: String,
        /// What serde said.
        source: serde_json::Error,
    },
}

/// Replaces the gathering (gen 0) rows of `robot` for the rules in `batch` with `batch`'s.
///
/// # Errors
/// SQLite or encoding failures.
pub fn put_gathering(conn: &Connection, robot: &str, batch: &Batch) -> Result<(), PendingError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO pending (robot, rule, gen, data) VALUES (?1, ?2, 0, ?3)",
    )?;
    for rule in batch.ordered() {
        let data = row::encode(rule).map_err(|source| PendingError::Row {
            robot: robot.to_string(),
            rule: rule.rule.clone(),
            source,
        })?;
        insert.execute(params![robot, rule.rule, data])?;
    }
    Ok(())
}

/// Marks everything gathering for `robot` as in flight under `id` (the batch just sent).
///
/// # Errors
/// SQLite failures.
pub fn mark_in_flight(conn: &Connection, robot: &str, id: u64) -> Result<(), PendingError> {
    let id = i64::try_from(id).unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM pending WHERE robot = ?1 AND gen = ?2",
        params![robot, id],
    )?;
    conn.execute(
        "UPDATE pending SET gen = ?2 WHERE robot = ?1 AND gen = 0",
        params![robot, id],
    )?;
    Ok(())
}

/// Forgets the in-flight batch `id` of `robot` (DingTalk answered errcode 0).
///
/// # Errors
/// SQLite failures.
pub fn delete_in_flight(conn: &Connection, robot: &str, id: u64) -> Result<(), PendingError> {
    let id = i64::try_from(id).unwrap_or(i64::MAX);
    conn.execute(
        "DELETE FROM pending WHERE robot = ?1 AND gen = ?2",
        params![robot, id],
    )?;
    Ok(())
}

/// Replaces all of `robot`'s rows with `batch` as gathering (a failed send folded back).
///
/// # Errors
/// SQLite or encoding failures.
pub fn replace_all(conn: &Connection, robot: &str, batch: &Batch) -> Result<(), PendingError> {
    conn.execute("DELETE FROM pending WHERE robot = ?1", params![robot])?;
    put_gathering(conn, robot, batch)
}

/// Everything undelivered, per robot, every generation folded together (after a restart all of
/// it is pending again).
///
/// # Errors
/// SQLite or decoding failures.
pub fn load_all(conn: &Connection) -> Result<BTreeMap<String, Batch>, PendingError> {
    let mut select = conn.prepare("SELECT robot, rule, data FROM pending ORDER BY gen DESC")?;
    let mut rows = select.query([])?;
    let mut out: BTreeMap<String, Batch> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let robot: String = row.get(0)?;
        let rule: String = row.get(1)?;
        let data: String = row.get(2)?;
        let decoded = row::decode(&rule, &data).map_err(|source| PendingError::Row {
            robot: robot.clone(),
            rule: rule.clone(),
            source,
        })?;
        out.entry(robot)
            .or_default()
            .absorb(Batch::from_rules([decoded]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use rusqlite::Connection;

    use crate::batch::{Batch, Hit, Rendered};
    use crate::event::{Mentions, Severity};
    use crate::state::pending::{
        CREATE_TABLE, delete_in_flight, load_all, mark_in_flight, put_gathering, replace_all,
    };

    fn batch(rule: &str, n: u64) -> Batch {
        let mentions = Mentions {
            mobiles: vec!["13800000000".into()],
            user_ids: vec![],
            all: false,
        };
        let mut batch = Batch::default();
        for i in 0..n {
            let line = format!("line {i}");
            let hit = Hit {
                rule,
                severity: Severity::Critical,
                line: &line,
                file: "/var/log/x.log",
                host: "web-1",
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i),
                mentions: &mentions,
                top: &[("n", &line)],
            };
            batch.add(hit, || Rendered::markdown("title", line.clone()));
        }
        batch
    }

    #[test]
    fn gathering_in_flight_delivered_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("s.db")).unwrap();
        conn.execute_batch(CREATE_TABLE).unwrap();
        let first = batch("oom", 3);
        put_gathering(&conn, "ops", &first).unwrap();
        assert_eq!(
            load_all(&conn).unwrap()["ops"],
            first,
            "round trip is exact"
        );
        mark_in_flight(&conn, "ops", 7).unwrap();
        put_gathering(&conn, "ops", &batch("oom", 2)).unwrap();
        // After a crash here, both the in-flight and the newer batch come back, counts added.
        assert_eq!(load_all(&conn).unwrap()["ops"].count(), 5);
        delete_in_flight(&conn, "ops", 7).unwrap();
        assert_eq!(load_all(&conn).unwrap()["ops"].count(), 2);
        let mut merged = batch("oom", 2);
        merged.absorb(batch("disk", 4));
        replace_all(&conn, "ops", &merged).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].count(), 6);
        assert_eq!(loaded["ops"].mentions().mobiles, ["13800000000"]);
    }
}
