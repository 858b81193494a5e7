//! `dingtail test` on a journald input: the log is journalctl's JSON output (`journalctl -o json
//! … | dingtail test --input NAME -`), one entry per line, decoded exactly as the daemon's
//! `JournalReader` decodes it (`journal::EntryDecoder`: `MESSAGE` as the text, every other field
//! as context, `_HOSTNAME` as the host, the input's `encoding`, `content: json`), so that
//! `where:` on journal fields and templates over them can be tried on real entries. Lines that
//! are no entry (the `-- cursor:` trailer of `--show-cursor` is ignored) are counted and
//! skipped, as the daemon skips them.

use std::io::Read;

use crate::cli::test::{CHUNK_BYTES, Scan};
use crate::config::InputConfig;
use crate::intake::reader::{LineReader, Piece};
use crate::journal::{JournalInput, JournalLine};

impl Scan<'_> {
    /// Reads journalctl's JSON lines from `reader` as entries of `input` and matches each.
    /// Returns the bytes read.
    pub(super) fn journal(
        &mut self,
        reader: &mut dyn Read,
        input: &InputConfig,
    ) -> anyhow::Result<u64> {
        let Some(journal) = JournalInput::from_config(input) else {
            anyhow::bail!("input `{}` is not a journald input", input.name);
        };
        let mut lines = LineReader::new(journal.max_entry_bytes, 0);
        loop {
            let mut budget = CHUNK_BYTES;
            let before = lines.position();
            loop {
                let piece = match lines.next_piece(reader, &mut budget) {
                    Ok(Some(piece)) => piece,
                    Ok(None) => break,
                    Err(err) => anyhow::bail!("cannot read the log: {err}"),
                };
                if let Piece::Line {
                    bytes, truncated, ..
                } = piece
                {
                    self.entry(&journal, bytes, truncated, input);
                }
            }
            if lines.position() == before {
                break;
            }
        }
        if let Some(Piece::Line {
            bytes, truncated, ..
        }) = lines.take_partial()
        {
            self.entry(&journal, bytes, truncated, input);
        }
        Ok(lines.position())
    }

    /// Matches one line of journalctl's output, if it is an entry.
    fn entry(&mut self, journal: &JournalInput, line: &[u8], cut: bool, input: &InputConfig) {
        self.n_lines += 1;
        let line_no = self.n_lines;
        if cut {
            self.n_skipped += 1;
            return;
        }
        match journal.decoder.decode(line) {
            Ok(JournalLine::Entry(entry)) => {
                let event = entry.into_line(input, self.started);
                self.event(line_no, &event);
            }
            Ok(JournalLine::Trailer(_)) => {}
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
            Err(_) => self.n_skipped += 1,
        }
    }
}
