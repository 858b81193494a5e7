//! Pending batches on disk: what each robot has not delivered yet, aggregated per rule, so that a
//! robot unreachable for a day costs one row per (robot, rule), not one per matched line.
//!
//! Rows carry a generation: 0 for what is still gathering, [`DOUBTFUL_GEN`] for a batch that was
//! sent without a known answer (it may have been delivered), the in-flight id for a batch being
//! sent. Sending moves gen-0 rows (or the doubtful rows, for a repeat) to the id; once the
//! answer is in, the robot's rows are rewritten as they stand ([`replace_all`]). After a crash,
//! whatever was in flight is doubtful: it is sent again by itself, marked as a possible repeat,
//! and nothing else repeats.
//!
//! The functions take a `rusqlite::Connection` (a `Transaction` derefs to one), so that the daemon
//! commits pending rows in the same transaction as the file offsets they came from.

mod notice_row;
mod row;

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, params};

use crate::batch::{Batch, Notices, RuleBatch};

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

/// A whole batch as one JSON text (the cluster's hand-offs through Redis, issue 15): the rows
/// of the table, keyed by rule, under a version.
///
/// # Errors
/// serde failures (none are expected for these plain types).
pub fn encode_batch(batch: &Batch) -> Result<String, serde_json::Error> {
    let mut rules = serde_json::Map::new();
    // Rules and the alert kinds' notices alike, one row per rule, as the table holds them.
    for rule in batch.rule_names() {
        let notices = batch.notices().of_rule(rule);
        rules.insert(
            rule.to_owned(),
            serde_json::Value::String(row::encode(batch.rule(rule), &notices)?),
        );
    }
    let mut wire = serde_json::Map::new();
    wire.insert("v".into(), 1.into());
    wire.insert("rules".into(), serde_json::Value::Object(rules));
    serde_json::to_string(&wire)
}

/// Decodes what [`encode_batch`] wrote (on any host, by any dingtail that knows version 1 and
/// the row versions in it).
///
/// # Errors
/// Not JSON, not a version-1 batch, or a row this dingtail cannot read.
pub fn decode_batch(text: &str) -> Result<Batch, serde_json::Error> {
    use serde::de::Error as _;
    let wire: serde_json::Value = serde_json::from_str(text)?;
    if wire.get("v").and_then(serde_json::Value::as_u64) != Some(1) {
        return Err(serde_json::Error::custom("not a version-1 batch"));
    }
    let Some(rules) = wire.get("rules").and_then(serde_json::Value::as_object) else {
        return Err(serde_json::Error::custom("a batch without rules"));
    };
    let mut decoded = Vec::with_capacity(rules.len());
    let mut notices = Notices::default();
    for (name, data) in rules {
        let data = data
            .as_str()
            .ok_or_else(|| serde_json::Error::custom("a rule that is not a row"))?;
        let (rule, rule_notices) = row::decode(name, data)?;
        decoded.extend(rule);
        notices.absorb(rule_notices);
    }
    notices.kept.sort_by_key(|notice| notice.at);
    Ok(Batch::from_parts(decoded, notices))
}

/// The generation of rows that may have been delivered already.
pub const DOUBTFUL_GEN: i64 = -1;

/// What one robot has not delivered, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Undelivered {
    /// New events (gathering).
    pub pending: Batch,
    /// Events sent without a known answer: they may repeat.
    pub doubtful: Batch,
}

/// Replaces the gathering (gen 0) rows of `robot` for the rules in `batch` with `batch`'s.
///
/// # Errors
/// SQLite or encoding failures.
pub fn put_gathering(conn: &Connection, robot: &str, batch: &Batch) -> Result<(), PendingError> {
    put(conn, robot, batch, 0)
}

/// Writes the gathering (gen 0) rows of `robot` for `rules` as `batch` holds them: replaced,
/// or deleted when `batch` holds nothing of a rule. The robot's other rows are left as they are.
///
/// # Errors
/// SQLite or encoding failures.
pub fn put_gathering_rules(
    conn: &Connection,
    robot: &str,
    batch: &Batch,
    rules: &BTreeSet<String>,
) -> Result<(), PendingError> {
    let mut insert = conn.prepare_cached(INSERT)?;
    let mut delete =
        conn.prepare_cached("DELETE FROM pending WHERE robot = ?1 AND rule = ?2 AND gen = 0")?;
    let names = batch.rule_names();
    for rule in rules {
        if names.contains(rule.as_str()) {
            insert.execute(params![robot, rule, encode(robot, rule, batch)?, 0])?;
        } else {
            delete.execute(params![robot, rule])?;
        }
    }
    Ok(())
}

const INSERT: &str =
    "INSERT OR REPLACE INTO pending (robot, rule, gen, data) VALUES (?1, ?2, ?4, ?3)";

/// Inserts or replaces `batch`'s rows of `robot` in generation `gen`.
fn put(conn: &Connection, robot: &str, batch: &Batch, generation: i64) -> Result<(), PendingError> {
    let mut insert = conn.prepare_cached(INSERT)?;
    for rule in batch.rule_names() {
        insert.execute(params![
            robot,
            rule,
            encode(robot, rule, batch)?,
            generation
        ])?;
    }
    Ok(())
}

/// `rule`'s row of `batch`: its lines and its notices.
fn encode(robot: &str, rule: &str, batch: &Batch) -> Result<String, PendingError> {
    let notices = batch.notices().of_rule(rule);
    row::encode(batch.rule(rule), &notices).map_err(|source| PendingError::Row {
        robot: robot.to_string(),
        rule: rule.to_string(),
        source,
    })
}

/// Marks everything gathering for `robot` as in flight under `id` (the batch just sent).
///
/// # Errors
/// SQLite failures.
pub fn mark_in_flight(conn: &Connection, robot: &str, id: u64) -> Result<(), PendingError> {
    move_generation(conn, robot, 0, id)
}

/// Marks the doubtful batch of `robot` as in flight under `id` (sent again, marked).
///
/// # Errors
/// SQLite failures.
pub fn mark_resending(conn: &Connection, robot: &str, id: u64) -> Result<(), PendingError> {
    move_generation(conn, robot, DOUBTFUL_GEN, id)
}

fn move_generation(conn: &Connection, robot: &str, from: i64, id: u64) -> Result<(), PendingError> {
    let id = i64::try_from(id).unwrap_or(i64::MAX);
    conn.prepare_cached("DELETE FROM pending WHERE robot = ?1 AND gen = ?2")?
        .execute(params![robot, id])?;
    conn.prepare_cached("UPDATE pending SET gen = ?2 WHERE robot = ?1 AND gen = ?3")?
        .execute(params![robot, id, from])?;
    Ok(())
}

/// Replaces all of `robot`'s rows with what it has not delivered, nothing in flight: `pending`
/// as gathering, `doubtful` as possibly delivered.
///
/// # Errors
/// SQLite or encoding failures.
pub fn replace_all(
    conn: &Connection,
    robot: &str,
    pending: &Batch,
    doubtful: &Batch,
) -> Result<(), PendingError> {
    conn.prepare_cached("DELETE FROM pending WHERE robot = ?1")?
        .execute(params![robot])?;
    put(conn, robot, pending, 0)?;
    put(conn, robot, doubtful, DOUBTFUL_GEN)
}

/// Everything undelivered, per robot: the gathering rows as pending; the doubtful rows and
/// whatever was in flight (a crash before the answer) as doubtful.
///
/// # Errors
/// SQLite or decoding failures.
pub fn load_all(conn: &Connection) -> Result<BTreeMap<String, Undelivered>, PendingError> {
    let mut select =
        conn.prepare("SELECT robot, rule, data, gen FROM pending ORDER BY gen DESC")?;
    let mut rows = select.query([])?;
    // Per robot, new (false) and doubtful (true): the rules' parts and their notices, put
    // together once all rows are read (notices in the order they came, across rules).
    type Parts = (Vec<RuleBatch>, Notices);
    let mut parts: BTreeMap<(String, bool), Parts> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let robot: String = row.get(0)?;
        let rule: String = row.get(1)?;
        let data: String = row.get(2)?;
        let generation: i64 = row.get(3)?;
        let decoded = row::decode(&rule, &data).map_err(|source| PendingError::Row {
            robot: robot.clone(),
            rule: rule.clone(),
            source,
        })?;
        let (rules, notices) = parts.entry((robot, generation != 0)).or_default();
        let (rule, rule_notices) = decoded;
        rules.extend(rule);
        notices.absorb(rule_notices);
    }
    let mut out: BTreeMap<String, Undelivered> = BTreeMap::new();
    for ((robot, doubtful), (rules, mut notices)) in parts {
        notices.kept.sort_by_key(|notice| notice.at);
        let undelivered = out.entry(robot).or_default();
        let batch = if doubtful {
            &mut undelivered.doubtful
        } else {
            &mut undelivered.pending
        };
        batch.absorb(Batch::from_parts(rules, notices));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use rusqlite::Connection;

    use crate::alert::NoticeKind;
    use crate::batch::{Batch, Hit, Rendered};
    use crate::batch::{BatchNotice, NoticeEvent};
    use crate::event::{Mentions, Severity};
    use crate::state::pending::{
        CREATE_TABLE, decode_batch, encode_batch, load_all, mark_in_flight, mark_resending,
        put_gathering, put_gathering_rules, replace_all,
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
            load_all(&conn).unwrap()["ops"].pending,
            first,
            "round trip is exact"
        );
        mark_in_flight(&conn, "ops", 7).unwrap();
        put_gathering(&conn, "ops", &batch("oom", 2)).unwrap();
        // After a crash here, both the in-flight and the newer batch come back, counts added:
        // the in-flight one as doubtful (it may have been delivered), the newer one as new.
        let loaded = load_all(&conn).unwrap();
        assert_eq!(
            loaded["ops"].pending.count() + loaded["ops"].doubtful.count(),
            5
        );
        assert_eq!(loaded["ops"].doubtful, first);
        // Delivered: the robot's rows are what it has not delivered.
        replace_all(&conn, "ops", &batch("oom", 2), &Batch::default()).unwrap();
        assert_eq!(load_all(&conn).unwrap()["ops"].pending.count(), 2);
        let mut merged = batch("oom", 2);
        merged.absorb(batch("disk", 4));
        replace_all(&conn, "ops", &merged, &batch("net", 1)).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].pending.count(), 6);
        assert_eq!(loaded["ops"].doubtful.count(), 1);
        assert_eq!(loaded["ops"].pending.mentions().mobiles, ["13800000000"]);
        // A doubtful batch sent again moves to its in-flight id, and stays doubtful after a
        // crash.
        mark_resending(&conn, "ops", 8).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].doubtful.count(), 1);
        assert_eq!(loaded["ops"].pending.count(), 6);
    }

    /// Writing only the rules whose lines matched leaves the robot's rows exactly as a whole
    /// rewrite would (issue 18), in flight or not; a rule the batch no longer holds loses its
    /// gathering row, and nothing else of the robot is touched.
    #[test]
    fn writing_the_changed_rules_alone_equals_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("s.db")).unwrap();
        conn.execute_batch(CREATE_TABLE).unwrap();
        let mut gathering = batch("oom", 2);
        gathering.absorb(batch("disk", 3));
        let doubtful = batch("net", 1);
        replace_all(&conn, "ops", &gathering, &doubtful).unwrap();
        put_gathering(&conn, "dev", &batch("oom", 4)).unwrap();
        // New matches of `disk` and a first one of `ssh`.
        gathering.absorb(batch("disk", 2));
        gathering.absorb(batch("ssh", 1));
        let rules = ["disk".to_string(), "ssh".to_string()].into();
        put_gathering_rules(&conn, "ops", &gathering, &rules).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].pending, gathering);
        assert_eq!(loaded["ops"].doubtful, doubtful);
        assert_eq!(
            loaded["dev"].pending,
            batch("oom", 4),
            "another robot untouched"
        );
        // In flight: the gathering rows start again beside the in-flight ones.
        mark_in_flight(&conn, "ops", 9).unwrap();
        let after = batch("oom", 1);
        put_gathering_rules(&conn, "ops", &after, &["oom".to_string()].into()).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].pending, after);
        assert_eq!(
            loaded["ops"].doubtful.count(),
            gathering.count() + doubtful.count()
        );
        // A named rule the batch does not hold (any more) has no gathering row.
        put_gathering_rules(&conn, "ops", &Batch::default(), &["oom".to_string()].into()).unwrap();
        let loaded = load_all(&conn).unwrap();
        assert_eq!(loaded["ops"].pending, Batch::default());
        assert_eq!(
            loaded["ops"].doubtful.count(),
            gathering.count() + doubtful.count()
        );
    }

    /// A cluster hand-off carries the alert kinds' notices too, with a rule that has notices
    /// only (issue 13 beside issue 15).
    #[test]
    fn a_handed_off_batch_keeps_its_notices() {
        let mut batch = batch("ssh", 2);
        batch.add_notice(BatchNotice {
            rule: "heartbeat".into(),
            severity: Severity::Warning,
            labels: vec![("host".into(), "web-2".into())],
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100),
            mentions: Mentions::default(),
            event: NoticeEvent::Alert(NoticeKind::Absent {
                last_seen: None,
                for_: Duration::from_secs(300),
                silent_for: Duration::from_secs(301),
            }),
        });
        let decoded = decode_batch(&encode_batch(&batch).unwrap()).unwrap();
        assert_eq!(decoded.count(), 2);
        assert_eq!(decoded.notices(), batch.notices());
        assert_eq!(decoded.rule("heartbeat"), None);
    }
}
