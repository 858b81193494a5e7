//! Micro-benchmark of the decoders (issue 14): `intake::decode::Decoder::push` over 4 MiB of
//! lines already cut by the line reader, on one core, for each format beside plain text. The
//! target is at least 300 MB/s per format before matching. Throughput counts the raw bytes of
//! the file (timestamps, JSON syntax and all), in MB (10⁶ bytes) per second.
//!
//! Time is the CPU time of the benchmark's thread (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the project's machines are 2 shared cores, and the work of others running meanwhile would
//! otherwise count as ours. On an idle machine the two agree.
//!
//! `cargo bench --bench decode`; CI only compiles it (`cargo bench --no-run`).

// Bench code may fail loudly, like test code; `criterion_group!` generates undocumented items.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dingtail::config::{Content, Decoding, Format};
use dingtail::event::FileId;
use dingtail::intake::decode::{Decoder, RawLine};
use dingtail::intake::{EventReader, Framing, Origin};

const SIZE: usize = 4 << 20;

/// CPU time of the calling thread.
struct ThreadCpu;

/// Formats like wall time (both are nanoseconds).
static WALL_TIME: WallTime = WallTime;

fn thread_cpu_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap(),
        u32::try_from(now.tv_nsec).unwrap(),
    )
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}
const POD_LOG: &str = "/var/log/pods/shop_web-0_5b3c6f0e-8f1c-4c1e-9a55-0c6d3b1f2a77/nginx/0.log";

/// The application's message `i`: varied length like a mixed log (about 120 bytes on average).
fn message(i: usize) -> String {
    let pad = "x".repeat(i * 37 % 200);
    format!("2026-11-25 08:00:01.{:03} INFO line {i} {pad}", i % 1000)
}

/// A file of `SIZE` bytes made of `line(i)` for i = 0, 1, …, each followed by `\n`.
fn file(line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut buf = Vec::with_capacity(SIZE + 1024);
    let mut i = 0;
    while buf.len() < SIZE {
        buf.extend_from_slice(line(i).as_bytes());
        buf.push(b'\n');
        i += 1;
    }
    buf
}

fn plain() -> Vec<u8> {
    file(message)
}

/// containerd's lines; every 50th message is split into a `P` and an `F` piece.
fn cri() -> Vec<u8> {
    file(|i| {
        let stamp = format!(
            "2026-11-24T12:00:{:02}.{:09}Z",
            i % 60,
            i * 7919 % 1_000_000_000
        );
        let text = message(i);
        if i % 50 == 0 {
            let (head, tail) = text.split_at(text.len() / 2);
            format!("{stamp} stdout P {head}\n{stamp} stdout F {tail}")
        } else {
            format!("{stamp} stdout F {text}")
        }
    })
}

/// docker's json-file lines; every 50th message is split into two chunks.
fn docker() -> Vec<u8> {
    file(|i| {
        let time = format!(
            "2026-11-24T12:00:{:02}.{:09}Z",
            i % 60,
            i * 7919 % 1_000_000_000
        );
        let text = message(i);
        let chunk = |log: &str| {
            format!(
                r#"{{"log":{},"stream":"stdout","time":"{time}"}}"#,
                serde_json::to_string(log).unwrap()
            )
        };
        if i % 50 == 0 {
            let (head, tail) = text.split_at(text.len() / 2);
            format!("{}\n{}", chunk(head), chunk(&format!("{tail}\n")))
        } else {
            chunk(&format!("{text}\n"))
        }
    })
}

/// A structured logger's JSON line (logback's JSON layout shape).
fn json_object(i: usize) -> String {
    format!(
        r#"{{"@timestamp":"2026-11-24T12:00:{:02}.{:03}+08:00","level":"{}","logger":"com.example.shop.OrderService","thread":"http-nio-8080-exec-{}","message":{},"trace_id":"{:016x}","status":{},"latency_ms":{}.5}}"#,
        i % 60,
        i % 1000,
        ["INFO", "WARN", "ERROR", "DEBUG"][i % 4],
        i % 16,
        serde_json::to_string(&message(i)).unwrap(),
        i * 2_654_435_761,
        [200, 404, 500][i % 3],
        i % 900
    )
}

fn json() -> Vec<u8> {
    file(json_object)
}

/// CRI lines whose content is the application's JSON (`content: json`).
fn cri_json() -> Vec<u8> {
    file(|i| {
        let stamp = format!(
            "2026-11-24T12:00:{:02}.{:09}Z",
            i % 60,
            i * 7919 % 1_000_000_000
        );
        format!("{stamp} stdout F {}", json_object(i))
    })
}

/// The plain lines with a Chinese message, in GBK.
fn gbk() -> Vec<u8> {
    let mut buf = Vec::with_capacity(SIZE + 1024);
    let mut i = 0;
    while buf.len() < SIZE {
        let text = format!("{} 订单处理失败: 数据库连接超时 重试 {}", message(i), i % 7);
        let (bytes, _, _) = encoding_rs::GBK.encode(&text);
        buf.extend_from_slice(&bytes);
        buf.push(b'\n');
        i += 1;
    }
    buf
}

/// The lines of `data` as the line reader hands them out.
fn lines(data: &[u8]) -> Vec<RawLine<'_>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, byte) in data.iter().enumerate() {
        if *byte == b'\n' {
            out.push(RawLine {
                bytes: &data[start..i],
                start: start as u64,
                end: i as u64 + 1,
                truncated: false,
            });
            start = i + 1;
        }
    }
    out
}

fn decode(c: &mut Criterion<ThreadCpu>) {
    let gbk_encoding = encoding_rs::Encoding::for_label(b"gbk");
    let cases: [(&str, Vec<u8>, Decoding); 8] = [
        ("plain", plain(), Decoding::default()),
        (
            "plain-as-auto",
            plain(),
            Decoding {
                format: Format::Auto,
                ..Decoding::default()
            },
        ),
        (
            "gbk",
            gbk(),
            Decoding {
                encoding: gbk_encoding,
                ..Decoding::default()
            },
        ),
        (
            "cri",
            cri(),
            Decoding {
                format: Format::Cri,
                ..Decoding::default()
            },
        ),
        (
            "docker",
            docker(),
            Decoding {
                format: Format::Docker,
                ..Decoding::default()
            },
        ),
        (
            "json",
            json(),
            Decoding {
                format: Format::Json,
                ..Decoding::default()
            },
        ),
        (
            "cri-content-json",
            cri_json(),
            Decoding {
                format: Format::Cri,
                content: Content::Json,
                ..Decoding::default()
            },
        ),
        (
            "auto-cri",
            cri(),
            Decoding {
                format: Format::Auto,
                ..Decoding::default()
            },
        ),
    ];
    let mut group = c.benchmark_group("decode");
    group.measurement_time(Duration::from_secs(5));
    // What plain text cost before decoders existed: `String::from_utf8_lossy` per line.
    let data = plain();
    let raw = lines(&data);
    group.throughput(Throughput::BytesDecimal(data.len() as u64));
    group.bench_function("baseline-from-utf8-lossy", |b| {
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        b.iter(|| {
            for line in &raw {
                out.push(String::from_utf8_lossy(line.bytes).into_owned());
            }
            black_box(&out);
            out.clear();
        })
    });
    for (name, data, decoding) in &cases {
        let raw = lines(data);
        group.throughput(Throughput::BytesDecimal(data.len() as u64));
        group.bench_function(*name, |b| {
            let now = Instant::now();
            let mut out = Vec::with_capacity(raw.len());
            b.iter(|| {
                let mut decoder = Decoder::new(decoding, 1 << 20, Path::new(POD_LOG));
                for line in &raw {
                    decoder.push(*line, now, &mut out);
                }
                decoder.flush(&mut out);
                assert!(out.iter().all(|record| !record.invalid), "{name}");
                black_box(&out);
                out.clear();
            })
        });
    }
    group.finish();
    event_reader(c, &cases);
}

/// The whole intake of a followed file: `EventReader::read` (line reader, decoder, `LogLine`s
/// with their context and fields) over the same files, in the tailer's 64 KiB reads.
fn event_reader(c: &mut Criterion<ThreadCpu>, cases: &[(&str, Vec<u8>, Decoding)]) {
    let mut group = c.benchmark_group("event_reader");
    group.measurement_time(Duration::from_secs(5));
    for (name, data, decoding) in cases {
        if !matches!(*name, "plain" | "cri" | "json" | "gbk") {
            continue;
        }
        group.throughput(Throughput::BytesDecimal(data.len() as u64));
        let framing = Framing {
            decoding: decoding.clone(),
            ..Framing::plain()
        };
        group.bench_function(*name, |b| {
            let now = Instant::now();
            let wall = std::time::SystemTime::now();
            let mut out = Vec::with_capacity(data.len() / 100);
            b.iter(|| {
                let origin = Origin {
                    input: "app".into(),
                    file_id: FileId(1),
                    path: std::path::Path::new(POD_LOG).into(),
                };
                let mut reader = EventReader::new(&framing, origin, 0, now);
                let mut src = data.as_slice();
                loop {
                    let mut budget = 64 << 10;
                    let before = reader.position();
                    reader
                        .read(&mut src, &mut budget, usize::MAX, now, wall, &mut out)
                        .unwrap();
                    if reader.position() == before {
                        break;
                    }
                }
                reader.flush(now, wall, &mut out);
                black_box(&out);
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = decode
}
criterion_main!(benches);
