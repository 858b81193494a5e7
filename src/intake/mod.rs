//! Intake: the one path from the bytes of a followed file (or the journal) to the records rules
//! see. [`decode`] turns raw lines into records according to the input's format and encoding.

pub mod decode;
