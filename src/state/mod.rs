//! Durable state: checkpoints and pending events in an embedded SQLite database. The only module
//! that knows SQL (issue 5).
//!
//! One file, `<state_dir>/state.db`, in WAL mode. The daemon commits the pending batches of a
//! round of lines and the file offsets after those lines in one transaction
//! ([`Store::transaction`]), so a checkpoint never gets ahead of what it protects.
//!
//! Durability: `synchronous=NORMAL` under WAL. A committed transaction is in the WAL file before
//! `COMMIT` returns, so a `kill -9` (or any crash of the process alone) loses nothing committed
//! and never leaves a half-written state. Only a power loss or kernel crash can roll back the
//! last few commits, and they roll back whole: offsets and pending batches together, so the
//! lines after the older checkpoint are read again (at least once, never lost). `FULL` would
//! add an fsync per batch to narrow that window; for alerts, re-reading a few lines after a power
//! cut is the better trade.

pub mod checkpoint;
pub mod globs;
pub mod pending;
pub mod schema;
pub mod sends;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

pub use crate::state::checkpoint::save_checkpoint_changes;
pub use crate::state::checkpoint::save_checkpoints;
use crate::state::pending::PendingError;
use crate::tail::checkpoint::Checkpoint;

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
}

/// The state database of one state dir.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    first_start: bool,
}

impl Store {
    /// Opens (creating it and `state_dir` if missing) and migrates `<state_dir>/state.db`.
    ///
    /// # Errors
    /// The dir or database cannot be created or opened, or was written by a newer version.
    pub fn open(state_dir: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StateError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        let found = schema::migrate(&mut conn).map_err(|err| match err {
            schema::MigrateError::TooNew { found, known } => StateError::TooNew {
                path: path.clone(),
                found,
                known,
            },
            schema::MigrateError::Sql(source) => open_err(source),
        })?;
        Ok(Store {
            conn,
            first_start: found == 0,
        })
    }

    /// Every stored checkpoint.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load_checkpoints(&self) -> Result<Vec<Checkpoint>, StateError> {
        checkpoint::load(&self.conn)
    }

    /// True when this state dir has never run before (the database was created by this
    /// `open`): `start_at` then applies to the files found at start.
    pub fn is_first_start(&self) -> bool {
        self.first_start
    }

    /// Runs `f` in one transaction and commits if it returns `Ok` (rolls back otherwise). The
    /// daemon stores pending batches (`state::pending::*`) and checkpoints
    /// ([`save_checkpoints`]) together in it.
    ///
    /// # Errors
    /// What `f` returned, or SQLite failing to begin or commit.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let tx = self.conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// The connection, for reads outside a transaction (e.g. `pending::load_all`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
