//! Durable state: checkpoints (file offsets, journal cursors) and pending events in an embedded
//! SQLite database. The only module that knows SQL (issue 5).
//!
//! One file, `<state_dir>/state.db`, in WAL mode. The daemon commits the pending batches of a
//! round of lines and the file offsets after those lines in one transaction
//! ([`Store::commit`]), so a checkpoint never gets ahead of what it protects.
//!
//! Durability: `synchronous=NORMAL` under WAL. A committed transaction is in the WAL file before
//! `COMMIT` returns, so a `kill -9` (or any crash of the process alone) loses nothing committed
//! and never leaves a half-written state. Only a power loss or kernel crash can roll back the
//! last few commits, and they roll back whole: offsets and pending batches together, so the
//! lines after the older checkpoint are read again (at least once, never lost). `FULL` would
//! add an fsync per batch to narrow that window; for alerts, re-reading a few lines after a power
//! cut is the better trade.

pub mod alerts;
pub mod checkpoint;
pub mod cursors;
pub mod file;
pub mod globs;
pub mod pending;
pub mod schema;
pub mod sends;
pub mod silences;
pub mod throttles;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags, Transaction};

use crate::alert::{Silence, SilenceChanges, SilenceId, SilenceRecord, TrackerChanges};
use crate::batch::Batch;
pub use crate::state::alerts::StoredKeys;
pub use crate::state::cursors::JournalCursor;
use crate::state::pending::PendingError;
pub use crate::state::pending::Undelivered;
use crate::tail::checkpoint::{Checkpoint, CheckpointChanges};

/// The database file inside the state dir.
pub const DB_FILE: &str = "state.db";

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state dir cannot be created.
    #[error("cannot create state dir {}: {source}", path.display())]
    Dir {
        /// The state dir.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database cannot be opened or set up.
    #[error("cannot open state database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer dingtail.
    #[error(
        "state database {} has schema version {found}, newer than this dingtail knows ({known})",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// A query failed.
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The pending-batch table failed.
    #[error(transparent)]
    Pending(#[from] PendingError),
    /// A row could not be encoded.
    #[error("state database: cannot encode a row: {0}")]
    Encode(String),
    /// A silence id is taken (draw another).
    #[error("silence id `{0}` is taken")]
    Duplicate(String),
}

impl StateError {
    /// True when the database exists but cannot be written (permissions, a read-only file
    /// system): reading it still works.
    pub fn is_not_writable(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StateError::Sql(err)
            | StateError::Open { source: err, .. }
            | StateError::Pending(PendingError::Sql(err)) => matches!(
                err.sqlite_error_code(),
                Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen)
            ),
            StateError::Dir { source, .. } => {
                source.kind() == std::io::ErrorKind::PermissionDenied
                    || source.raw_os_error() == Some(30) // EROFS
            }
            _ => false,
        }
    }

    /// True when the database file is damaged (not a database, corrupt): moving it aside and
    /// starting a fresh one is the only way to write again.
    pub fn is_corrupt(&self) -> bool {
        match self {
            StateError::Sql(err)
            | StateError::Open { source: err, .. }
            | StateError::Pending(PendingError::Sql(err)) => file::is_corrupt(err),
            _ => false,
        }
    }

    /// Why the state cannot be written, in a few words for a chat message: the OS's or
    /// SQLite's reason, not the query.
    pub fn reason(&self) -> String {
        use rusqlite::ErrorCode;
        let sqlite = match self {
            StateError::Sql(err)
            | StateError::Open { source: err, .. }
            | StateError::Pending(PendingError::Sql(err)) => err.sqlite_error_code(),
            _ => None,
        };
        match sqlite {
            Some(ErrorCode::DiskFull) => "no space left on device".into(),
            Some(ErrorCode::ReadOnly) => "the state database is read-only".into(),
            Some(ErrorCode::PermissionDenied) => "permission denied".into(),
            Some(ErrorCode::CannotOpen) => "the state database cannot be opened".into(),
            Some(ErrorCode::SystemIoFailure) => "I/O error".into(),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                "the state database is damaged".into()
            }
            _ => self.to_string(),
        }
    }
}

/// A damaged database found at start and moved aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// What was wrong with it.
    pub damage: String,
    /// Where it was moved.
    pub moved_to: PathBuf,
}

/// The state database of one state dir.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    first_start: bool,
    recovered: Option<Recovery>,
    /// The database could only be opened for reading (its files are not writable): every
    /// commit first tries to open it for writing again.
    read_only: bool,
}

impl Store {
    /// Opens (creating it and `state_dir` if missing, private to the owner) and migrates
    /// `<state_dir>/state.db`. A damaged database (empty, corrupt, its schema broken) is moved
    /// aside and a fresh one started: [`Store::recovered`] says so, and the caller must say it
    /// loudly.
    ///
    /// # Errors
    /// The dir or database cannot be created or opened, or was written by a newer version.
    pub fn open(state_dir: &Path) -> Result<Store, StateError> {
        file::create_dir(state_dir).map_err(|source| StateError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let mut recovered = None;
        if let Err(Some(damage)) = file::check(&path) {
            let moved_to =
                file::move_aside(&path, std::time::SystemTime::now()).map_err(|source| {
                    StateError::Dir {
                        path: path.clone(),
                        source,
                    }
                })?;
            recovered = Some(Recovery {
                damage: damage.to_string(),
                moved_to,
            });
        }
        let (conn, found, read_only) = match Store::connect(&path) {
            Ok((conn, found)) => (conn, found, false),
            // Readable but not writable: start anyway, reading what is there; every commit
            // fails (and delivery runs degraded) until the files can be written again.
            Err(err) if err.is_not_writable() => match Store::connect_read_only(&path) {
                Some(conn) => (conn, schema::VERSION, true),
                None => return Err(err),
            },
            Err(err) => return Err(err),
        };
        Ok(Store {
            conn,
            first_start: found == 0,
            path,
            recovered,
            read_only,
        })
    }

    /// Opens an existing database of the current version for reading only.
    fn connect_read_only(path: &Path) -> Option<Connection> {
        // `immutable`: a WAL database in a directory that cannot be written has no `-shm` to
        // share; nobody else writes it while it is unwritable.
        let uri = url::Url::from_file_path(path).ok()?;
        let uri = format!("{uri}?mode=ro&immutable=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(uri, flags).ok()?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .ok()?;
        (version == schema::VERSION).then_some(conn)
    }

    /// The damaged database this open found and moved aside, if any.
    pub fn recovered(&self) -> Option<&Recovery> {
        self.recovered.as_ref()
    }

    /// While running: the database turned out damaged. Moves it aside and starts a fresh one;
    /// the caller must write everything it holds in memory again (checkpoints, undelivered
    /// events, globs). Returns where the damaged file went.
    ///
    /// # Errors
    /// The file cannot be moved or the fresh database cannot be created; the store keeps the
    /// old connection then.
    pub fn start_over(&mut self) -> Result<PathBuf, StateError> {
        let moved_to =
            file::move_aside(&self.path, std::time::SystemTime::now()).map_err(|source| {
                StateError::Dir {
                    path: self.path.clone(),
                    source,
                }
            })?;
        let (conn, _) = Store::connect(&self.path)?;
        self.conn = conn;
        Ok(moved_to)
    }

    /// Opens (creating it private) and migrates the database at `path`; returns it and the
    /// version it had.
    fn connect(path: &Path) -> Result<(Connection, u32), StateError> {
        let open_err = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        file::create_private(path).map_err(|source| StateError::Dir {
            path: path.to_path_buf(),
            source,
        })?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        let found = schema::migrate(&mut conn).map_err(|err| match err {
            schema::MigrateError::TooNew { found, known } => StateError::TooNew {
                path: path.to_path_buf(),
                found,
                known,
            },
            schema::MigrateError::Sql(source) => open_err(source),
        })?;
        Ok((conn, found))
    }

    /// Every stored checkpoint.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_checkpoints(&self) -> Result<Vec<Checkpoint>, StateError> {
        checkpoint::load(&self.conn)
    }

    /// The `(input, glob)` pairs scanned by earlier runs (empty for a state dir from before
    /// they were recorded).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_globs(&self) -> Result<BTreeSet<(String, String)>, StateError> {
        globs::load(&self.conn)
    }

    /// Where each journald input is in the journal, by input name.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_journal_cursors(&self) -> Result<BTreeMap<String, JournalCursor>, StateError> {
        cursors::load(&self.conn)
    }

    /// Everything undelivered, per robot (see [`Undelivered`]).
    ///
    /// # Errors
    /// SQLite or decoding failures.
    pub fn load_undelivered(&self) -> Result<BTreeMap<String, Undelivered>, StateError> {
        Ok(pending::load_all(&self.conn)?)
    }

    /// At start: everything undelivered from the last run comes back — new events as pending,
    /// what was in flight or doubtful as doubtful — and is written back that way, so that this
    /// run's in-flight ids cannot collide with old ones. Returns it, per robot.
    ///
    /// # Errors
    /// SQLite or decoding failures; nothing changed then.
    pub fn restore_undelivered(&mut self) -> Result<BTreeMap<String, Undelivered>, StateError> {
        self.transaction(|tx| {
            let all = pending::load_all(tx)?;
            for (robot, undelivered) in &all {
                pending::replace_all(tx, robot, &undelivered.pending, &undelivered.doubtful)?;
            }
            Ok(all)
        })
    }

    /// The sends of the last `within` before `now`, per robot, oldest first, as ages.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn recent_sends(
        &self,
        now: SystemTime,
        within: Duration,
    ) -> Result<BTreeMap<String, Vec<Duration>>, StateError> {
        sends::recent(&self.conn, now, within)
    }

    /// The throttle blocks (130101/410100) still in force at `now`, per robot: when each ends.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn throttles(&self, now: SystemTime) -> Result<BTreeMap<String, SystemTime>, StateError> {
        throttles::in_force(&self.conn, now)
    }

    /// The alert-kind state of every rule (issue 13): its keys' records, and the rows that
    /// could not be read (described; left out, their keys start afresh).
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_alert_keys(&self) -> Result<StoredKeys, StateError> {
        alerts::load(&self.conn)
    }

    /// The silences as the daemon starts with them: what it counted (each with its definition)
    /// and the shared definitions, and the rows that could not be read.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_silences(&self) -> Result<StoredSilences, StateError> {
        let (counted, mut bad) = silences::counted(&self.conn)?;
        let (definitions, bad_definitions) = silences::definitions(&self.conn)?;
        bad.extend(bad_definitions);
        Ok(StoredSilences {
            counted,
            definitions,
            bad,
        })
    }

    /// The shared silence definitions (what `dingtail mute` writes), and the rows that could
    /// not be read.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn silence_definitions(&self) -> Result<(Vec<Silence>, Vec<String>), StateError> {
        silences::definitions(&self.conn)
    }

    /// Every silence with what the daemon counted for it, ending soonest first (`dingtail
    /// mutes`), and the rows that could not be read.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn list_silences(&self) -> Result<(Vec<SilenceRecord>, Vec<String>), StateError> {
        let (mut records, bad) = silences::list(&self.conn)?;
        records.sort_by(|a, b| {
            (a.silence.ends(), a.silence.id()).cmp(&(b.silence.ends(), b.silence.id()))
        });
        Ok((records, bad))
    }

    /// Adds a silence (`dingtail mute`; the daemon picks it up within a second).
    ///
    /// # Errors
    /// [`StateError::Duplicate`] when its id is taken; SQLite failures.
    pub fn add_silence(&mut self, silence: &Silence) -> Result<(), StateError> {
        self.writable()?;
        self.transaction(|tx| silences::add(tx, silence))
    }

    /// Deletes silence `id` (`dingtail unmute ID`); returns it if it existed. The daemon
    /// reports what it muted.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn remove_silence(&mut self, id: &SilenceId) -> Result<Option<Silence>, StateError> {
        self.writable()?;
        self.transaction(|tx| silences::remove(tx, id))
    }

    /// Deletes every silence of `rule` (`dingtail unmute RULE`); returns them.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn remove_silences_of(&mut self, rule: &str) -> Result<Vec<Silence>, StateError> {
        self.writable()?;
        self.transaction(|tx| silences::remove_rule(tx, rule))
    }

    /// Deletes the silences that ended before `now` with nothing left to report; returns how
    /// many.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn purge_ended_silences(&mut self, now: SystemTime) -> Result<usize, StateError> {
        self.writable()?;
        self.transaction(|tx| silences::purge_ended(tx, now))
    }

    /// SQLite's `data_version`: it changes when another connection (`dingtail mute`) commits,
    /// so that the daemon re-reads the silences only then.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn data_version(&self) -> Result<i64, StateError> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |row| row.get(0))?)
    }

    /// Makes `changes` durable together, in one transaction: all of them or none. The daemon
    /// describes what moved (matches gathered, a batch sent or delivered, checkpoints, globs);
    /// this decides how it is written.
    ///
    /// # Errors
    /// SQLite or encoding failures; nothing was written then.
    pub fn commit(&mut self, changes: &[Change<'_>]) -> Result<(), StateError> {
        self.writable()?;
        self.transaction(|tx| {
            for change in changes {
                match *change {
                    Change::Gathering { robot, batch } => pending::put_gathering(tx, robot, batch)?,
                    Change::GatheringRules {
                        robot,
                        batch,
                        rules,
                    } => pending::put_gathering_rules(tx, robot, batch, rules)?,
                    Change::Undelivered {
                        robot,
                        pending,
                        doubtful,
                    } => pending::replace_all(tx, robot, pending, doubtful)?,
                    Change::Sending { robot, id, at } => {
                        pending::mark_in_flight(tx, robot, id)?;
                        sends::record(tx, robot, at)?;
                    }
                    Change::Resending { robot, id, at } => {
                        pending::mark_resending(tx, robot, id)?;
                        sends::record(tx, robot, at)?;
                    }
                    Change::Answered { robot, at } => sends::restamp_last(tx, robot, at)?,
                    Change::Sent { robot, at } => sends::record(tx, robot, at)?,
                    Change::Throttled { robot, until } => throttles::record(tx, robot, until)?,
                    Change::Checkpoints(changes) => {
                        checkpoint::save_checkpoint_changes(tx, changes)?
                    }
                    Change::AllCheckpoints(all) => checkpoint::save_checkpoints(tx, all)?,
                    Change::Globs(globs) => globs::save(tx, globs)?,
                    Change::Alerts { rule, changes } => alerts::save(tx, rule, changes)?,
                    Change::ForgetAlerts { rule } => alerts::forget_rule(tx, rule)?,
                    Change::Silences(changes) => silences::save(tx, changes)?,
                    Change::JournalCursors(positions) => cursors::save(tx, positions)?,
                }
            }
            Ok(())
        })
    }

    /// A store opened read-only tries to open for writing again.
    fn writable(&mut self) -> Result<(), StateError> {
        if self.read_only {
            let (conn, _) = Store::connect(&self.path)?;
            self.conn = conn;
            self.read_only = false;
        }
        Ok(())
    }

    /// True when this state dir has never run before (the database was created by this
    /// `open`): `start_at` then applies to the files found at start.
    pub fn is_first_start(&self) -> bool {
        self.first_start
    }

    /// Runs `f` in one transaction and commits if it returns `Ok` (rolls back otherwise).
    fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let tx = self.conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// The connection, for the state's own tests.
    #[cfg(test)]
    fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The silences stored, as the daemon starts with them.
#[derive(Clone, Debug, Default)]
pub struct StoredSilences {
    /// What the daemon counted, each with the definition it counts for.
    pub counted: Vec<SilenceRecord>,
    /// The shared definitions.
    pub definitions: Vec<Silence>,
    /// The rows that could not be read, described (left out).
    pub bad: Vec<String>,
}

/// One thing [`Store::commit`] makes durable.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// What `robot` is gathering while another batch of it is in flight.
    Gathering {
        /// The robot.
        robot: &'a str,
        /// Its gathering batch.
        batch: &'a Batch,
    },
    /// The gathering rows of `rules` of `robot` (the rules whose lines just matched); its other
    /// rows are on disk as they stand in memory (issue 18: a commit no longer rewrites all
    /// that a robot holds for one new match).
    GatheringRules {
        /// The robot.
        robot: &'a str,
        /// Its gathering batch.
        batch: &'a Batch,
        /// The rules whose rows changed.
        rules: &'a BTreeSet<String>,
    },
    /// All that `robot` has not delivered, nothing of it in flight: new events (`pending`)
    /// and events that may have been delivered already (`doubtful`).
    Undelivered {
        /// The robot.
        robot: &'a str,
        /// New events, gathering.
        pending: &'a Batch,
        /// Sent without a known answer.
        doubtful: &'a Batch,
    },
    /// `robot`'s gathering batch is being sent as in-flight batch `id`, at `at` (a send the
    /// rate limit counts across restarts).
    Sending {
        /// The robot.
        robot: &'a str,
        /// The in-flight id.
        id: u64,
        /// When it was sent.
        at: SystemTime,
    },
    /// `robot`'s doubtful batch is being sent again, marked, as in-flight batch `id`, at `at`.
    Resending {
        /// The robot.
        robot: &'a str,
        /// The in-flight id.
        id: u64,
        /// When it was sent.
        at: SystemTime,
    },
    /// The answer to `robot`'s last send came at `at`: it counts from then.
    Answered {
        /// The robot.
        robot: &'a str,
        /// When the answer came.
        at: SystemTime,
    },
    /// A message went to `robot` at `at` outside the daemon's queue (`send --robot`,
    /// `check --ping`): it counts in the robot's rate history like the daemon's sends.
    Sent {
        /// The robot.
        robot: &'a str,
        /// When it was sent.
        at: SystemTime,
    },
    /// DingTalk throttled `robot`: it is blocked until `until`.
    Throttled {
        /// The robot.
        robot: &'a str,
        /// When the block should be over.
        until: SystemTime,
    },
    /// The checkpoints that moved since the last commit.
    Checkpoints(&'a CheckpointChanges),
    /// The whole checkpoint table (files not in it lose their row).
    AllCheckpoints(&'a [Checkpoint]),
    /// The `(input, glob)` pairs scanned so far.
    Globs(&'a BTreeSet<(String, String)>),
    /// What changed in `rule`'s alert-kind state since the last commit (issue 13).
    Alerts {
        /// The rule.
        rule: &'a str,
        /// Its tracker's changes.
        changes: &'a TrackerChanges,
    },
    /// `rule` no longer has alert-kind state (a reload removed it or its keys).
    ForgetAlerts {
        /// The rule.
        rule: &'a str,
    },
    /// What changed in the daemon's silences since the last commit.
    Silences(&'a SilenceChanges),
    /// Every journald input's position (the whole set: inputs not in it lose their row).
    JournalCursors(&'a BTreeMap<String, JournalCursor>),
}
