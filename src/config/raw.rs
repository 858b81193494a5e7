//! serde mirror of the files (filled in by the loader work).
