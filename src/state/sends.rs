//! When each robot was last sent to: DingTalk counts a robot's messages per minute whatever our
//! process does, so a daemon restarted within the minute must know what it already sent, or a
//! restart loop could push a robot over the limit (and into a ten-minute block).
//!
//! One row per send attempt, wall-clock milliseconds; rows older than an hour are pruned.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use crate::state::StateError;

/// The table, created by schema version 2.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS sends (
    robot TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sends_by_robot ON sends (robot, at_ms);";

/// Sends older than this are forgotten (no rate window is that long).
pub const KEEP: Duration = Duration::from_secs(3600);

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Records a send attempt to `robot` at `at`, and forgets that robot's sends older than [`KEEP`].
///
/// # Errors
/// SQLite failures.
pub fn record(conn: &Connection, robot: &str, at: SystemTime) -> Result<(), StateError> {
    conn.prepare_cached("INSERT INTO sends (robot, at_ms) VALUES (?1, ?2)")?
        .execute(params![robot, millis(at)])?;
    let horizon = at.checked_sub(KEEP).unwrap_or(UNIX_EPOCH);
    conn.prepare_cached("DELETE FROM sends WHERE robot = ?1 AND at_ms < ?2")?
        .execute(params![robot, millis(horizon)])?;
    Ok(())
}

/// Moves `robot`'s latest send to `at` (when its answer came back; see
/// `RateLimiter::restamp_last`).
///
/// # Errors
/// SQLite failures.
pub fn restamp_last(conn: &Connection, robot: &str, at: SystemTime) -> Result<(), StateError> {
    conn.prepare_cached(
        "UPDATE sends SET at_ms = MAX(at_ms, ?2)
         WHERE rowid = (SELECT MAX(rowid) FROM sends WHERE robot = ?1)",
    )?
    .execute(params![robot, millis(at)])?;
    Ok(())
}

/// The sends of the last `within` before `now`, per robot, oldest first, as ages (how long
/// before `now` each was).
///
/// # Errors
/// SQLite failures.
pub fn recent(
    conn: &Connection,
    now: SystemTime,
    within: Duration,
) -> Result<BTreeMap<String, Vec<Duration>>, StateError> {
    let since = millis(now.checked_sub(within).unwrap_or(UNIX_EPOCH));
    let now_ms = millis(now);
    let mut select =
        conn.prepare("SELECT robot, at_ms FROM sends WHERE at_ms >= ?1 ORDER BY at_ms")?;
    let mut rows = select.query(params![since])?;
    let mut out: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let robot: String = row.get(0)?;
        let at_ms: i64 = row.get(1)?;
        // A send "in the future" (the clock stepped back) counts as just now.
        let age = u64::try_from(now_ms.saturating_sub(at_ms)).unwrap_or(0);
        out.entry(robot)
            .or_default()
            .push(Duration::from_millis(age));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::state::Store;
    use crate::state::sends::{KEEP, recent, record, restamp_last};

    #[test]
    fn recent_sends_survive_a_reopen_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store
                .transaction(|tx| {
                    record(tx, "ops", now - KEEP - Duration::from_secs(120))?;
                    record(tx, "ops", now - Duration::from_secs(50))?;
                    record(tx, "ops", now - Duration::from_secs(12))?;
                    // Answered two seconds later.
                    restamp_last(tx, "ops", now - Duration::from_secs(10))?;
                    record(tx, "dba", now - Duration::from_secs(70))?;
                    Ok(())
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let sends = recent(store.connection(), now, Duration::from_secs(63)).unwrap();
        assert_eq!(
            sends.get("ops").map(Vec::as_slice),
            Some(&[Duration::from_secs(50), Duration::from_secs(10)][..])
        );
        assert!(!sends.contains_key("dba"), "outside the window");
        let all = recent(store.connection(), now, KEEP * 2).unwrap();
        assert_eq!(
            all["ops"].len(),
            2,
            "the send older than an hour was pruned"
        );
    }
}
