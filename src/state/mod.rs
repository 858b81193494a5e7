//! Durable state: checkpoints and pending events in an embedded SQLite database. The only module
//! that knows SQL (issue 5).

pub mod pending;
