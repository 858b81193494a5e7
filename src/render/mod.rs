//! Rendering: the text of messages from templates and summaries. No I/O (issue 4).
