//! The systemd journal as an input (`inputs.NAME.journald`), read through the real journal
//! tools rather than a re-implementation of the file format: `journalctl --follow
//! --output=json` runs as a child process and each entry comes with its cursor, which is the
//! input's checkpoint.
//!
//! Split the usual way: [`command`] builds journalctl's command line and [`entry`] parses its
//! output (both pure, tested on strings); [`reader`] is the I/O edge that runs, reads and
//! restarts journalctl and reports its status; [`probe`] asks, before any reader runs, whether
//! the journal can be read at all (for `check`).

pub mod command;
pub mod entry;
pub mod probe;
pub mod reader;

pub use crate::journal::command::Resume;
pub use crate::journal::entry::{
    EntryDecoder, EntryError, JOURNAL_PATH, JournalEntry, JournalLine,
};
pub use crate::journal::reader::{
    JournalEvent, JournalInput, JournalReader, JournalStatus, ReaderOptions,
};
