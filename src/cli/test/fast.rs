//! The fast path of `dingtail test` (issue 7): plain UTF-8 text read in chunks of whole lines,
//! each chunk searched at once with `RuleSet::scan_buffer`, which checks only the lines that
//! hold a candidate. Only for logs the event path would read alike: no multi-line joining, no
//! `where:` rules, no format or encoding (the caller decides).

use std::io::{self, Read};

use crate::cli::test::{CHUNK_BYTES, Scan};
use crate::rules::RuleMatch;

impl Scan<'_> {
    /// Searches runs of whole lines with `scan_buffer`, checking only candidate lines; a run
    /// holding a line over `max_line_bytes` goes through the event reader instead, which cuts
    /// it as the daemon does. Returns the bytes read.
    pub(super) fn fast(&mut self, reader: &mut dyn Read) -> anyhow::Result<u64> {
        let mut n_bytes = 0u64;
        read_chunks(reader, |chunk, is_last| {
            let offset = n_bytes;
            n_bytes += chunk.len() as u64;
            let (n_newlines, longest) = line_stats(chunk);
            if longest > self.framing.max_line_bytes {
                self.read_events(chunk, offset, is_last);
                return;
            }
            let rule_set = self.rule_set;
            let mut matches = std::mem::take(&mut self.matches);
            let mut found: Vec<(usize, String, Vec<RuleMatch>)> = Vec::new();
            rule_set.scan_buffer(chunk, &mut matches, |at, line, hits| {
                found.push((at, line.to_string(), hits.to_vec()));
            });
            self.matches = matches;
            let mut counted_to = 0usize;
            let mut line_no = self.n_lines;
            for (at, text, hits) in found {
                line_no += count_newlines(chunk.get(counted_to..at).unwrap_or_default());
                counted_to = at;
                let end = memchr::memchr(b'\n', chunk.get(at..).unwrap_or_default())
                    .map_or(chunk.len(), |i| at + i + 1);
                let line = self.line(offset + at as u64, offset + end as u64, text);
                self.record(line_no + 1, &line, &hits);
            }
            let n_chunk_lines = n_newlines + u64::from(chunk.last().is_some_and(|b| *b != b'\n'));
            self.n_lines += n_chunk_lines;
            self.n_events += n_chunk_lines;
        })?;
        Ok(n_bytes)
    }
}

/// Reads `reader` to the end and calls `on_chunk` with runs of whole lines (the last chunk may
/// end without `\n`; `is_last` says it is the last). A line longer than a chunk is read on until
/// it ends.
fn read_chunks(reader: &mut dyn Read, mut on_chunk: impl FnMut(&[u8], bool)) -> anyhow::Result<()> {
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
fn line_stats(chunk: &[u8]) -> (u64, usize) {
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

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}
