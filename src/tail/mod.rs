//! Tailing: every line appended to a watched file reaches the matcher once, in order, through
//! rotation, restarts and bad input (issue 3).

pub mod multiline;
