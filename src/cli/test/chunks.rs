//! Reading a log in chunks of whole lines for `dingtail test`, and the line counting the fast
//! path (`RuleSet::scan_buffer` over a chunk) needs: newlines, longest line, and the line number
//! of an event from the offsets seen. Pure helpers over bytes, apart from the scan's report.

use std::collections::VecDeque;
use std::io::{self, Read};

/// Bytes read per chunk (the unit `scan_buffer` searches).
pub(super) const CHUNK_BYTES: usize = 1 << 20;

/// Reads `reader` to the end and calls `on_chunk` with runs of whole lines (the last chunk may
/// end without `\n`; `is_last` says it is the last). A line longer than a chunk is read on until
/// it ends.
pub(super) fn read_chunks(
    reader: &mut dyn Read,
    mut on_chunk: impl FnMut(&[u8], bool),
) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES * 2);
    let mut scratch = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut scratch) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => anyhow::bail!("cannot read the log: {err}"),
        };
        if n == 0 {
            if !buf.is_empty() {
                on_chunk(&buf, true);
            }
            return Ok(());
        }
        buf.extend_from_slice(scratch.get(..n).unwrap_or_default());
        if buf.len() < CHUNK_BYTES {
            continue;
        }
        let Some(last_newline) = memchr::memrchr(b'\n', &buf) else {
            continue;
        };
        let cut = last_newline + 1;
        on_chunk(buf.get(..cut).unwrap_or_default(), false);
        buf.drain(..cut);
    }
}

/// How many `\n` `chunk` holds, and its longest line (without `\n` and a `\r` before it).
pub(super) fn line_stats(chunk: &[u8]) -> (u64, usize) {
    let mut n = 0u64;
    let mut longest = 0usize;
    let mut start = 0usize;
    for at in memchr::memchr_iter(b'\n', chunk) {
        let line = chunk.get(start..at).unwrap_or_default();
        longest = longest.max(line.strip_suffix(b"\r").unwrap_or(line).len());
        n += 1;
        start = at + 1;
    }
    let last = chunk.get(start..).unwrap_or_default();
    longest = longest.max(last.strip_suffix(b"\r").unwrap_or(last).len());
    (n, longest)
}

/// How many `\n` `bytes` holds.
pub(super) fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The line number of the event starting at `start`, forgetting the lines before it.
pub(super) fn event_line(pending: &mut VecDeque<(u64, u64)>, start: u64) -> u64 {
    while let Some(&(offset, line_no)) = pending.front() {
        if offset >= start {
            return line_no;
        }
        pending.pop_front();
    }
    0
}
