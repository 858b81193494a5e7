//! When DingTalk's block of a robot ends: recorded when a send is answered 130101 or 410100, so
//! that another process (`dingtail send --robot`, `check --ping`, a restarted daemon) knows the
//! robot is blocked and does not send into the block (each try may prolong it).
//!
//! One row per robot, wall-clock milliseconds; a later block replaces an earlier one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use crate::state::StateError;

/// The table, created by schema version 4.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS throttles (
    robot TEXT PRIMARY KEY,
    until_ms INTEGER NOT NULL
);";

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Records that `robot` is blocked until `until` (a later block wins).
///
/// # Errors
/// SQLite failures.
pub fn record(conn: &Connection, robot: &str, until: SystemTime) -> Result<(), StateError> {
    conn.prepare_cached(
        "INSERT INTO throttles (robot, until_ms) VALUES (?1, ?2)
         ON CONFLICT (robot) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)",
    )?
    .execute(params![robot, millis(until)])?;
    Ok(())
}

/// The blocks still in force at `now`, per robot.
///
/// # Errors
/// SQLite failures.
pub fn in_force(
    conn: &Connection,
    now: SystemTime,
) -> Result<BTreeMap<String, SystemTime>, StateError> {
    let mut select = conn.prepare("SELECT robot, until_ms FROM throttles WHERE until_ms > ?1")?;
    let mut rows = select.query(params![millis(now)])?;
    let mut out = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let robot: String = row.get(0)?;
        let until_ms: i64 = row.get(1)?;
        let until = UNIX_EPOCH + Duration::from_millis(u64::try_from(until_ms).unwrap_or(0));
        out.insert(robot, until);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::state::{Change, Store};

    #[test]
    fn blocks_survive_a_reopen_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store
                .commit(&[
                    Change::Throttled {
                        robot: "ops",
                        until: now + Duration::from_secs(600),
                    },
                    Change::Throttled {
                        robot: "ops",
                        until: now + Duration::from_secs(60),
                    },
                    Change::Throttled {
                        robot: "dba",
                        until: now - Duration::from_secs(1),
                    },
                ])
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let blocks = store.throttles(now).unwrap();
        assert_eq!(blocks.len(), 1, "the block of `dba` is over");
        let until = blocks["ops"];
        assert!(
            until >= now + Duration::from_secs(599),
            "the later block wins"
        );
    }
}
