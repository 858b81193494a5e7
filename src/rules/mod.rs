//! Matching: which rules fire for a line, and with which captures. No I/O (issue 4).
