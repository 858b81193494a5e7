//! Micro-benchmark of the line reader (issue 7): `intake::reader::LineReader` cutting 4 MiB of log
//! lines, read in the tailer's chunks, into lines, as the tailer does for every followed file.
//!
//! `cargo bench --bench reader`; CI only compiles it (`cargo bench --no-run`).

// Bench code may fail loudly, like test code; `criterion_group!` generates undocumented items.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dingtail::intake::reader::{LineReader, Piece};

/// Lines of varied length, like a mixed log (average about 120 bytes).
fn data() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut i = 0u64;
    while buf.len() < 4 << 20 {
        let pad = "x".repeat(usize::try_from(i * 37 % 200).unwrap());
        buf.extend_from_slice(
            format!("2026-11-25 08:00:01.{i:03} INFO line {i} {pad}\n").as_bytes(),
        );
        i += 1;
    }
    buf
}

fn reader(c: &mut Criterion) {
    let data = data();
    let n_lines = data.iter().filter(|b| **b == b'\n').count();
    let mut group = c.benchmark_group("line_reader");
    group.throughput(Throughput::Bytes(data.len() as u64));
    for (name, max_line_bytes) in [("4MiB", 1 << 20), ("4MiB-cut-at-64", 64)] {
        group.bench_function(name, |b| {
            let mut reader = LineReader::new(max_line_bytes, 0);
            b.iter(|| {
                reader.reset(0);
                let mut src = black_box(data.as_slice());
                let mut budget = usize::MAX;
                let mut lines = 0usize;
                while let Some(piece) = reader.next_piece(&mut src, &mut budget).unwrap() {
                    if let Piece::Line { bytes, .. } = piece {
                        black_box(bytes);
                        lines += 1;
                    }
                }
                assert_eq!(lines, n_lines);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reader);
criterion_main!(benches);
