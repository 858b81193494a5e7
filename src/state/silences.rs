//! Silences on disk (issue 13): the shared definitions that `dingtail mute` / `unmute` write
//! while the daemon runs (it reads them again within a second, see [`crate::state::Store::data_version`]),
//! and the counts the daemon keeps of what each muted.
//!
//! Two tables, after `alert::silence_set`'s split: `silences` holds the definitions anyone may
//! add or delete (the shell today, the chat and other hosts later, through the same functions);
//! `silence_counts` is written by the daemon only, one row per silence that muted something,
//! with a copy of the definition it counts for, so that a silence deleted from the shell while
//! the daemon was down is still reported with its count when the daemon starts. Rows are JSON
//! with a version `v` (version 1); times are milliseconds since the Unix epoch.
//!
//! With `cluster:` the same rows travel through Redis ([`encode_silence`], [`encode_muted`] for
//! a host's count, [`encode_ack`] for a [`SharedAck`]), so that hosts of different versions read
//! each other's as they read their own state.

use std::time::SystemTime;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::alert::{Muted, Silence, SilenceChanges, SilenceDraft, SilenceId, SilenceRecord};
use crate::state::StateError;
use crate::state::alerts::{ms, time};

/// The tables, created by schema version 7.
pub const CREATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS silence_counts (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);";

/// The version of the rows written.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SilenceRow {
    v: u32,
    rule: String,
    matchers: Vec<(String, String)>,
    starts: i64,
    ends: i64,
    reason: String,
    author: String,
    created: i64,
}

#[derive(Serialize, Deserialize)]
struct CountRow {
    v: u32,
    silence: SilenceRow,
    matches: u64,
    notices: u64,
    first: Option<i64>,
    last: Option<i64>,
}

/// Adds the definition of `silence`.
///
/// # Errors
/// [`StateError::Duplicate`] when its id is taken (draw another); SQLite or encoding failures.
pub fn add(conn: &Connection, silence: &Silence) -> Result<(), StateError> {
    let data = encode(silence)?;
    match conn.execute(
        "INSERT INTO silences (id, data) VALUES (?1, ?2)",
        params![silence.id().as_str(), data],
    ) {
        Ok(_) => Ok(()),
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            Err(StateError::Duplicate(silence.id().to_string()))
        }
        Err(err) => Err(err.into()),
    }
}

/// Deletes the definition of silence `id`; returns it if there was one. (The daemon reports
/// what it muted once it sees the silence gone.)
///
/// # Errors
/// SQLite failures.
pub fn remove(conn: &Connection, id: &SilenceId) -> Result<Option<Silence>, StateError> {
    let data: Option<String> = conn
        .query_row(
            "SELECT data FROM silences WHERE id = ?1",
            params![id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    conn.execute("DELETE FROM silences WHERE id = ?1", params![id.as_str()])?;
    Ok(data.and_then(|data| decode(id.as_str(), &data).ok()))
}

/// Deletes the definitions of every silence of `rule`; returns them.
///
/// # Errors
/// SQLite failures.
pub fn remove_rule(conn: &Connection, rule: &str) -> Result<Vec<Silence>, StateError> {
    let (all, _) = definitions(conn)?;
    let doomed: Vec<Silence> = all.into_iter().filter(|s| s.rule() == rule).collect();
    for silence in &doomed {
        conn.execute(
            "DELETE FROM silences WHERE id = ?1",
            params![silence.id().as_str()],
        )?;
    }
    Ok(doomed)
}

/// Every definition, and the rows that could not be read (described; left out).
///
/// # Errors
/// SQLite failures.
pub fn definitions(conn: &Connection) -> Result<(Vec<Silence>, Vec<String>), StateError> {
    let mut select = conn.prepare("SELECT id, data FROM silences ORDER BY id")?;
    let mut rows = select.query([])?;
    let mut out = Vec::new();
    let mut bad = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let data: String = row.get(1)?;
        match decode(&id, &data) {
            Ok(silence) => out.push(silence),
            Err(err) => bad.push(format!("silence `{id}`: {err}")),
        }
    }
    Ok((out, bad))
}

/// What the daemon counted, each with the definition it counts for (the daemon's
/// `SilenceSet::restore` takes these; `SilenceSet::sync` with [`definitions`] then ends those
/// deleted meanwhile).
///
/// # Errors
/// SQLite failures.
pub fn counted(conn: &Connection) -> Result<(Vec<SilenceRecord>, Vec<String>), StateError> {
    let mut select = conn.prepare("SELECT id, data FROM silence_counts ORDER BY id")?;
    let mut rows = select.query([])?;
    let mut out = Vec::new();
    let mut bad = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let data: String = row.get(1)?;
        let decoded = serde_json::from_str::<CountRow>(&data)
            .map_err(|err| err.to_string())
            .and_then(|row| {
                let silence = from_row(&id, row.silence)?;
                let muted = Muted {
                    matches: row.matches,
                    notices: row.notices,
                    first: row.first.map(time),
                    last: row.last.map(time),
                };
                Ok(SilenceRecord { silence, muted })
            });
        match decoded {
            Ok(record) => out.push(record),
            Err(err) => bad.push(format!("the count of silence `{id}`: {err}")),
        }
    }
    Ok((out, bad))
}

/// Every silence with what the daemon counted for it (`dingtail mutes`): the definitions, each
/// with its stored count (none yet: zero).
///
/// # Errors
/// SQLite failures.
pub fn list(conn: &Connection) -> Result<(Vec<SilenceRecord>, Vec<String>), StateError> {
    let (defs, mut bad) = definitions(conn)?;
    let (counts, bad_counts) = counted(conn)?;
    bad.extend(bad_counts);
    let records = defs
        .into_iter()
        .map(|silence| {
            let muted = counts
                .iter()
                .find(|c| c.silence.id() == silence.id())
                .map(|c| c.muted)
                .unwrap_or_default();
            SilenceRecord { silence, muted }
        })
        .collect();
    Ok((records, bad))
}

/// Deletes the definitions that ended before `now` and have no count waiting to be reported
/// (nothing was muted, or the daemon reported it): the cleaning the shell can do while no
/// daemon runs. Returns how many.
///
/// # Errors
/// SQLite failures.
pub fn purge_ended(conn: &Connection, now: SystemTime) -> Result<usize, StateError> {
    let (defs, _) = definitions(conn)?;
    let mut n = 0;
    for silence in defs.iter().filter(|s| s.ends() <= now) {
        let counted: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM silence_counts WHERE id = ?1",
                params![silence.id().as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if counted.is_none() {
            n += conn.execute(
                "DELETE FROM silences WHERE id = ?1",
                params![silence.id().as_str()],
            )?;
        }
    }
    Ok(n)
}

/// Writes the daemon's `changes`: definitions made by the daemon, counts, and silences that
/// ended (definition and count both).
///
/// # Errors
/// SQLite or encoding failures.
pub fn save(conn: &Connection, changes: &SilenceChanges) -> Result<(), StateError> {
    for silence in &changes.added {
        conn.prepare_cached("INSERT OR REPLACE INTO silences (id, data) VALUES (?1, ?2)")?
            .execute(params![silence.id().as_str(), encode(silence)?])?;
    }
    for record in &changes.counts {
        let row = CountRow {
            v: VERSION,
            silence: to_row(&record.silence),
            matches: record.muted.matches,
            notices: record.muted.notices,
            first: record.muted.first.map(ms),
            last: record.muted.last.map(ms),
        };
        let data =
            serde_json::to_string(&row).map_err(|err| StateError::Encode(err.to_string()))?;
        conn.prepare_cached("INSERT OR REPLACE INTO silence_counts (id, data) VALUES (?1, ?2)")?
            .execute(params![record.silence.id().as_str(), data])?;
    }
    for id in &changes.removals {
        conn.prepare_cached("DELETE FROM silences WHERE id = ?1")?
            .execute(params![id.as_str()])?;
        conn.prepare_cached("DELETE FROM silence_counts WHERE id = ?1")?
            .execute(params![id.as_str()])?;
    }
    Ok(())
}

fn encode(silence: &Silence) -> Result<String, StateError> {
    serde_json::to_string(&to_row(silence)).map_err(|err| StateError::Encode(err.to_string()))
}

fn decode(id: &str, data: &str) -> Result<Silence, String> {
    let row: SilenceRow = serde_json::from_str(data).map_err(|err| err.to_string())?;
    from_row(id, row)
}

fn to_row(silence: &Silence) -> SilenceRow {
    SilenceRow {
        v: VERSION,
        rule: silence.rule().to_string(),
        matchers: silence.matchers().to_vec(),
        starts: ms(silence.starts()),
        ends: ms(silence.ends()),
        reason: silence.reason().to_string(),
        author: silence.author().to_string(),
        created: ms(silence.created()),
    }
}

fn from_row(id: &str, row: SilenceRow) -> Result<Silence, String> {
    if row.v > VERSION {
        return Err(format!(
            "row version {} is newer than this dingtail knows",
            row.v
        ));
    }
    let id = SilenceId::parse(id).ok_or_else(|| format!("`{id}` is not a silence id"))?;
    let draft = SilenceDraft {
        rule: row.rule,
        matchers: row.matchers,
        starts: time(row.starts),
        ends: time(row.ends),
        reason: row.reason,
        author: row.author,
    };
    Silence::new(id, draft, time(row.created)).map_err(|err| err.to_string())
}

/// An acknowledgement one host offers the others through Redis (cluster): `by` acknowledged
/// the incidents of `rule` whose keys have `matchers`, at `at`, on `host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedAck {
    /// The host where it was made.
    pub host: String,
    /// Who.
    pub by: String,
    /// The rule.
    pub rule: String,
    /// `KEY=VALUE` pairs the incidents' keys must all have.
    pub matchers: Vec<(String, String)>,
    /// When.
    pub at: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct AckRow {
    v: u32,
    host: String,
    by: String,
    rule: String,
    matchers: Vec<(String, String)>,
    at: i64,
}

#[derive(Serialize, Deserialize)]
struct MutedRow {
    v: u32,
    matches: u64,
    notices: u64,
    first: Option<i64>,
    last: Option<i64>,
}

/// A silence as the cluster shares it (the row of the `silences` table).
///
/// # Errors
/// Encoding failures.
pub fn encode_silence(silence: &Silence) -> Result<String, StateError> {
    encode(silence)
}

/// A shared silence back, checked as a new one is.
///
/// # Errors
/// Not a silence of a version this dingtail knows.
pub fn decode_silence(id: &str, data: &str) -> Result<Silence, String> {
    decode(id, data)
}

/// What a host muted, as the cluster shares it.
///
/// # Errors
/// Encoding failures.
pub fn encode_muted(muted: &Muted) -> Result<String, StateError> {
    let row = MutedRow {
        v: VERSION,
        matches: muted.matches,
        notices: muted.notices,
        first: muted.first.map(ms),
        last: muted.last.map(ms),
    };
    serde_json::to_string(&row).map_err(|err| StateError::Encode(err.to_string()))
}

/// A shared count back.
///
/// # Errors
/// Not a count of a version this dingtail knows.
pub fn decode_muted(data: &str) -> Result<Muted, String> {
    let row: MutedRow = serde_json::from_str(data).map_err(|err| err.to_string())?;
    if row.v > VERSION {
        return Err(format!(
            "row version {} is newer than this dingtail knows",
            row.v
        ));
    }
    Ok(Muted {
        matches: row.matches,
        notices: row.notices,
        first: row.first.map(time),
        last: row.last.map(time),
    })
}

/// An acknowledgement as the cluster shares it.
///
/// # Errors
/// Encoding failures.
pub fn encode_ack(ack: &SharedAck) -> Result<String, StateError> {
    let row = AckRow {
        v: VERSION,
        host: ack.host.clone(),
        by: ack.by.clone(),
        rule: ack.rule.clone(),
        matchers: ack.matchers.clone(),
        at: ms(ack.at),
    };
    serde_json::to_string(&row).map_err(|err| StateError::Encode(err.to_string()))
}

/// A shared acknowledgement back.
///
/// # Errors
/// Not an acknowledgement of a version this dingtail knows.
pub fn decode_ack(data: &str) -> Result<SharedAck, String> {
    let row: AckRow = serde_json::from_str(data).map_err(|err| err.to_string())?;
    if row.v > VERSION {
        return Err(format!(
            "row version {} is newer than this dingtail knows",
            row.v
        ));
    }
    Ok(SharedAck {
        host: row.host,
        by: row.by,
        rule: row.rule,
        matchers: row.matchers,
        at: time(row.at),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rusqlite::Connection;

    use crate::alert::{Muted, Silence, SilenceChanges, SilenceDraft, SilenceId, SilenceRecord};
    use crate::state::StateError;
    use crate::state::silences::{
        CREATE_TABLES, add, counted, definitions, list, purge_ended, remove, remove_rule, save,
    };

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn silence(bits: u64, rule: &str, ends: u64) -> Silence {
        Silence::new(
            SilenceId::from_bits(bits),
            SilenceDraft {
                rule: rule.into(),
                matchers: vec![("ip".into(), "10.0.0.1".into())],
                starts: t(0),
                ends: t(ends),
                reason: "deploy \"v2\"".into(),
                author: "zhang.san".into(),
            },
            t(0),
        )
        .unwrap()
    }

    #[test]
    fn definitions_are_shared_and_counts_outlive_them() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CREATE_TABLES).unwrap();
        add(&conn, &silence(1, "ssh", 100)).unwrap();
        add(&conn, &silence(2, "ssh", 200)).unwrap();
        add(&conn, &silence(3, "nginx", 300)).unwrap();
        assert!(matches!(
            add(&conn, &silence(1, "other", 100)),
            Err(StateError::Duplicate(_))
        ));
        let (defs, bad) = definitions(&conn).unwrap();
        assert!(bad.is_empty());
        assert_eq!(
            defs,
            [
                silence(1, "ssh", 100),
                silence(2, "ssh", 200),
                silence(3, "nginx", 300)
            ]
        );
        // The daemon counts what silence 1 muted.
        let muted = Muted {
            matches: 123,
            notices: 1,
            first: Some(t(5)),
            last: Some(t(6)),
        };
        save(
            &conn,
            &SilenceChanges {
                added: vec![],
                counts: vec![SilenceRecord {
                    silence: silence(1, "ssh", 100),
                    muted,
                }],
                removals: vec![],
                through: 1,
            },
        )
        .unwrap();
        let (listed, _) = list(&conn).unwrap();
        assert_eq!(listed[0].muted, muted);
        assert_eq!(listed[1].muted, Muted::default());
        // `unmute` deletes the definition; the count stays until the daemon reports it.
        assert_eq!(
            remove(&conn, &SilenceId::from_bits(1)).unwrap(),
            Some(silence(1, "ssh", 100))
        );
        assert_eq!(remove(&conn, &SilenceId::from_bits(1)).unwrap(), None);
        let (counts, _) = counted(&conn).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].silence, silence(1, "ssh", 100));
        assert_eq!(remove_rule(&conn, "ssh").unwrap().len(), 1);
        assert_eq!(definitions(&conn).unwrap().0.len(), 1);
        // Ended and nothing to report: the shell may clean it.
        assert_eq!(purge_ended(&conn, t(299)).unwrap(), 0);
        assert_eq!(purge_ended(&conn, t(300)).unwrap(), 1);
        // The daemon's removal deletes definition and count.
        save(
            &conn,
            &SilenceChanges {
                added: vec![silence(4, "x", 10)],
                counts: vec![],
                removals: vec![SilenceId::from_bits(1)],
                through: 2,
            },
        )
        .unwrap();
        assert!(counted(&conn).unwrap().0.is_empty());
        assert_eq!(definitions(&conn).unwrap().0, [silence(4, "x", 10)]);
    }
}
