//! The alert-kind state of each rule (issue 13): one row per (rule, key) holding the key's
//! [`KeyRecord`] — its `when` window, its open incident with the counts folded so far, its
//! absence — written in the same transaction as the batches the tracker's decisions produced
//! (see `alert::record`), so that a `kill -9` mid-incident neither loses a resolved notice nor
//! fires an incident twice.
//!
//! Rows are JSON with a version `v` (this is version 1), apart from the runtime types; the key
//! is the JSON array of its values. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::alert::{GroupKey, IncidentRecord, KeyRecord, PhaseRecord, TrackerChanges};
use crate::state::StateError;

/// The table, created by schema version 7.
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS alert_keys (
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (rule, key)
);";

/// The version of the rows written.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct KeyRow {
    v: u32,
    window: Vec<i64>,
    last_seen: Option<i64>,
    last_active: Option<i64>,
    phase: PhaseRow,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum PhaseRow {
    Idle,
    Firing {
        opened_at: i64,
        first: i64,
        last: i64,
        total: u64,
        folded: u64,
        folded_since: Option<i64>,
        gate_until: Option<i64>,
        acked_at: Option<i64>,
    },
    Absent {
        silent_since: i64,
    },
    Recovering {
        last_seen: Option<i64>,
        back: i64,
        absent_for_ms: u64,
    },
}

/// The stored alert-kind state.
#[derive(Clone, Debug, Default)]
pub struct StoredKeys {
    /// Every stored key's record, per rule.
    pub by_rule: BTreeMap<String, Vec<KeyRecord>>,
    /// The rows that could not be read, described (left out: their keys start afresh).
    pub bad: Vec<String>,
}

/// Every stored key, per rule, and the rows that could not be read.
///
/// # Errors
/// SQLite failures.
pub fn load(conn: &Connection) -> Result<StoredKeys, StateError> {
    let mut select = conn.prepare("SELECT rule, key, data FROM alert_keys")?;
    let mut rows = select.query([])?;
    let mut out: BTreeMap<String, Vec<KeyRecord>> = BTreeMap::new();
    let mut bad = Vec::new();
    while let Some(row) = rows.next()? {
        let rule: String = row.get(0)?;
        let key: String = row.get(1)?;
        let data: String = row.get(2)?;
        match decode(&key, &data) {
            Ok(record) => out.entry(rule).or_default().push(record),
            Err(err) => bad.push(format!("rule `{rule}`, key {key}: {err}")),
        }
    }
    Ok(StoredKeys { by_rule: out, bad })
}

/// Writes `changes` of `rule`'s tracker.
///
/// # Errors
/// SQLite or encoding failures.
pub fn save(conn: &Connection, rule: &str, changes: &TrackerChanges) -> Result<(), StateError> {
    let mut upsert = conn.prepare_cached(
        "INSERT OR REPLACE INTO alert_keys (rule, key, data) VALUES (?1, ?2, ?3)",
    )?;
    for record in &changes.upserts {
        let data = serde_json::to_string(&to_row(record))
            .map_err(|err| StateError::Encode(err.to_string()))?;
        upsert.execute(params![rule, key_text(&record.key), data])?;
    }
    let mut delete = conn.prepare_cached("DELETE FROM alert_keys WHERE rule = ?1 AND key = ?2")?;
    for key in &changes.removals {
        delete.execute(params![rule, key_text(key)])?;
    }
    Ok(())
}

/// Forgets every key of `rule` (a rule a reload removed, or that lost its alert keys).
///
/// # Errors
/// SQLite failures.
pub fn forget_rule(conn: &Connection, rule: &str) -> Result<(), StateError> {
    conn.execute("DELETE FROM alert_keys WHERE rule = ?1", params![rule])?;
    Ok(())
}

/// A key as stored: the JSON array of its values.
fn key_text(key: &GroupKey) -> String {
    serde_json::to_string(&key.values().collect::<Vec<&str>>()).unwrap_or_else(|_| "[]".into())
}

fn decode(key: &str, data: &str) -> Result<KeyRecord, String> {
    let values: Vec<String> = serde_json::from_str(key).map_err(|err| err.to_string())?;
    let row: KeyRow = serde_json::from_str(data).map_err(|err| err.to_string())?;
    if row.v > VERSION {
        return Err(format!(
            "row version {} is newer than this dingtail knows",
            row.v
        ));
    }
    Ok(from_row(GroupKey::new(values), row))
}

fn to_row(record: &KeyRecord) -> KeyRow {
    let phase = match &record.phase {
        PhaseRecord::Idle => PhaseRow::Idle,
        PhaseRecord::Firing(incident) => PhaseRow::Firing {
            opened_at: ms(incident.opened_at),
            first: ms(incident.first),
            last: ms(incident.last),
            total: incident.total,
            folded: incident.folded,
            folded_since: incident.folded_since.map(ms),
            gate_until: incident.gate_until.map(ms),
            acked_at: incident.acked_at.map(ms),
        },
        PhaseRecord::Absent { silent_since } => PhaseRow::Absent {
            silent_since: ms(*silent_since),
        },
        PhaseRecord::Recovering {
            last_seen,
            back,
            absent_for,
        } => PhaseRow::Recovering {
            last_seen: last_seen.map(ms),
            back: ms(*back),
            absent_for_ms: u64::try_from(absent_for.as_millis()).unwrap_or(u64::MAX),
        },
    };
    KeyRow {
        v: VERSION,
        window: record.window.iter().copied().map(ms).collect(),
        last_seen: record.last_seen.map(ms),
        last_active: record.last_active.map(ms),
        phase,
    }
}

fn from_row(key: GroupKey, row: KeyRow) -> KeyRecord {
    let phase = match row.phase {
        PhaseRow::Idle => PhaseRecord::Idle,
        PhaseRow::Firing {
            opened_at,
            first,
            last,
            total,
            folded,
            folded_since,
            gate_until,
            acked_at,
        } => PhaseRecord::Firing(IncidentRecord {
            opened_at: time(opened_at),
            first: time(first),
            last: time(last),
            total,
            folded,
            folded_since: folded_since.map(time),
            gate_until: gate_until.map(time),
            acked_at: acked_at.map(time),
        }),
        PhaseRow::Absent { silent_since } => PhaseRecord::Absent {
            silent_since: time(silent_since),
        },
        PhaseRow::Recovering {
            last_seen,
            back,
            absent_for_ms,
        } => PhaseRecord::Recovering {
            last_seen: last_seen.map(time),
            back: time(back),
            absent_for: Duration::from_millis(absent_for_ms),
        },
    };
    KeyRecord {
        key,
        window: row.window.into_iter().map(time).collect(),
        last_seen: row.last_seen.map(time),
        last_active: row.last_active.map(time),
        phase,
    }
}

/// Milliseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn ms(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn time(ms: i64) -> SystemTime {
    let span = Duration::from_millis(ms.unsigned_abs());
    let at = if ms >= 0 {
        UNIX_EPOCH.checked_add(span)
    } else {
        UNIX_EPOCH.checked_sub(span)
    };
    at.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rusqlite::Connection;

    use crate::alert::{GroupKey, IncidentRecord, KeyRecord, PhaseRecord, TrackerChanges};
    use crate::state::alerts::{CREATE_TABLE, StoredKeys, forget_rule, load, save};

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + s)
    }

    #[test]
    fn records_round_trip_and_changes_apply() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CREATE_TABLE).unwrap();
        let firing = KeyRecord {
            key: GroupKey::new(["10.0.0.1", "héllo \"x\""]),
            window: vec![],
            last_seen: Some(t(5)),
            last_active: Some(t(6)),
            phase: PhaseRecord::Firing(IncidentRecord {
                opened_at: t(1),
                first: t(0),
                last: t(5),
                total: 42,
                folded: 37,
                folded_since: Some(t(2)),
                gate_until: Some(t(600)),
                acked_at: None,
            }),
        };
        let idle = KeyRecord {
            key: GroupKey::new(["10.0.0.2", ""]),
            window: vec![t(1), t(2), t(3)],
            last_seen: Some(t(3)),
            last_active: Some(t(3)),
            phase: PhaseRecord::Idle,
        };
        let recovering = KeyRecord {
            key: GroupKey::empty(),
            window: vec![],
            last_seen: None,
            last_active: Some(t(9)),
            phase: PhaseRecord::Recovering {
                last_seen: None,
                back: t(9),
                absent_for: Duration::from_millis(1234),
            },
        };
        let changes = TrackerChanges {
            upserts: vec![firing.clone(), idle.clone()],
            removals: vec![],
            through: 2,
        };
        save(&conn, "ssh", &changes).unwrap();
        save(
            &conn,
            "beat",
            &TrackerChanges {
                upserts: vec![recovering.clone()],
                removals: vec![],
                through: 1,
            },
        )
        .unwrap();
        let stored = load(&conn).unwrap();
        let (loaded, bad) = (stored.by_rule, stored.bad);
        assert!(bad.is_empty());
        let mut ssh = loaded["ssh"].clone();
        ssh.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(ssh, [firing.clone(), idle.clone()]);
        assert_eq!(loaded["beat"], [recovering]);
        save(
            &conn,
            "ssh",
            &TrackerChanges {
                upserts: vec![],
                removals: vec![idle.key.clone()],
                through: 3,
            },
        )
        .unwrap();
        assert_eq!(load(&conn).unwrap().by_rule["ssh"], [firing]);
        forget_rule(&conn, "ssh").unwrap();
        assert!(!load(&conn).unwrap().by_rule.contains_key("ssh"));
        // A row from a newer dingtail is left out, not misread.
        conn.execute(
            "INSERT INTO alert_keys (rule, key, data) VALUES ('x', '[]', '{\"v\":9}')",
            [],
        )
        .unwrap();
        let StoredKeys { by_rule, bad } = load(&conn).unwrap();
        assert!(!by_rule.contains_key("x"));
        assert_eq!(bad.len(), 1, "{bad:?}");
    }
}
