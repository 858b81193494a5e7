//! Micro-benchmarks of the matcher (issue 7): `RuleSet::matches` on lines that match nothing and
//! on lines that match, with the 10 and the 100 benchmark rules, and `RuleSet::scan_buffer` (and
//! `scan_text`, the same on a `str`) over a buffer of generated log lines. The rule sets are
//! loaded by `Pipeline::load_with`, exactly as the daemon loads them, so that a regression
//! anywhere on that path shows here.
//!
//! `cargo bench --bench matcher`; CI only compiles it (`cargo bench --no-run`).

// Bench code may fail loudly, like test code; `criterion_group!` generates undocumented items.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dingtail::config::rules::RuleSource;
use dingtail::pipeline::Pipeline;
use dingtail::rules::RuleSet;

/// Ordinary traffic of the kinds benches/genlog.py writes: none of the rules matches these.
const MISSES: &[&str] = &[
    r#"10.1.2.3 - - [25/Nov/2026:08:00:01 +0800] "GET /api/v1/orders HTTP/1.1" 200 5123 "-" "curl/8.5.0" rt=0.042"#,
    "2026-11-25 08:00:01.123 INFO [payments-worker-7] c.e.payments.Api - handled /cart in 12 ms user=4242",
    "Nov 25 08:00:01 web-3 sshd[4242]: Accepted publickey for deploy from 10.9.8.7 port 50022 ssh2: ED25519 SHA256:0123abcd",
    "2026/11/25 08:00:01 [info] 4242#0: *77 client 10.4.4.4 closed keepalive connection",
];

/// Lines the benchmark rules match (with captures).
const HITS: &[&str] = &[
    r#"10.1.2.3 - - [25/Nov/2026:08:00:01 +0800] "GET /checkout/confirm HTTP/1.1" 503 4119 "-" "curl/8.5.0" rt=2.100"#,
    "Nov 25 08:00:01 web-3 sshd[4242]: Failed password for invalid user admin from 10.9.8.7 port 50022 ssh2",
    "java.sql.SQLTransientConnectionException: Connection is not available, request timed out after 30000ms.",
];

/// The rule set of input `app` with the rules of `benches/rules-{n}.yaml`.
fn rule_set(dir: &Path, n: usize) -> RuleSet {
    let config = dir.join("dingtail.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\ninputs:\n  app:\n    paths: [\"{}\"]\nrobots:\n  ops:\n    webhook: stdout\nrules: []\n",
            dir.join("state").display(),
            dir.join("app.log").display()
        ),
    )
    .unwrap();
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("benches/rules-{n}.yaml"));
    let pipeline = Pipeline::load_with(&config, &RuleSource::Files(vec![rules])).unwrap();
    let set = pipeline.rules.get("app").unwrap().clone();
    assert_eq!(set.rules().len(), n);
    set
}

/// About 1 MiB of the lines above, one hit per thousand lines (the generator's match rate).
fn buffer() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut i = 0usize;
    while buf.len() < 1 << 20 {
        let line = if i % 1000 == 999 {
            HITS[(i / 1000) % HITS.len()]
        } else {
            MISSES[i % MISSES.len()]
        };
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        i += 1;
    }
    buf
}

fn matcher(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let buf = buffer();
    for n in [10, 100] {
        let set = rule_set(dir.path(), n);
        let mut out = Vec::new();
        let mut group = c.benchmark_group(format!("rules-{n}"));
        group.throughput(Throughput::Elements(MISSES.len() as u64));
        group.bench_function("matches/miss", |b| {
            b.iter(|| {
                for line in MISSES {
                    set.matches(black_box(line), &mut out);
                    assert!(out.is_empty());
                }
            })
        });
        group.throughput(Throughput::Elements(HITS.len() as u64));
        group.bench_function("matches/hit", |b| {
            b.iter(|| {
                for line in HITS {
                    set.matches(black_box(line), &mut out);
                    assert!(!out.is_empty());
                }
            })
        });
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function("scan_buffer/1MiB", |b| {
            b.iter(|| {
                let mut hits = 0usize;
                set.scan_buffer(black_box(&buf), &mut out, |_, _, found| hits += found.len());
                assert!(hits > 0);
                hits
            })
        });
        // The same buffer known to be UTF-8 (the daemon's batch of decoded texts): no check
        // of the whole buffer, candidate lines borrowed (issue 18 round 5).
        let text = std::str::from_utf8(&buf).unwrap();
        group.bench_function("scan_text/1MiB", |b| {
            b.iter(|| {
                let mut hits = 0usize;
                set.scan_text(black_box(text), &mut out, |_, _, found| hits += found.len());
                assert!(hits > 0);
                hits
            })
        });
        group.finish();
    }
}

criterion_group!(benches, matcher);
criterion_main!(benches);
