//! Memory and speed of the alert-kind state machines (issue 13).
//!
//! Memory: the heap a `Tracker` holds for 100,000 keys of one rule, measured with a counting
//! allocator, in the shapes a key can be in (a `when` window, an open incident, a heartbeat), and
//! for a plain rule after a million matches. Issue 13's limit is 50 MB for 100,000 keys; the
//! bench fails if a shape goes over it.
//!
//! Speed: `Tracker::on_match` of a plain rule (the fast path that keeps matching speed
//! unchanged), of a known key and of a new key at `max_groups` (an eviction).
//!
//! `cargo bench --bench alert`; CI only compiles it (`cargo bench --no-run`).

// Bench code may fail loudly, like test code; `criterion_group!` generates undocumented items;
// a counting allocator needs `unsafe impl GlobalAlloc` (it only forwards to the system's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs,
    unsafe_code
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group};
use dingtail::alert::{
    Absent, AlertParts, AlertSpec, GroupKey, Resolve, Tracker, TrackerChanges, When,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N_KEYS: u64 = 100_000;
const LIMIT_BYTES: isize = 50_000_000;

fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms)
}

fn ip(i: u64) -> GroupKey {
    GroupKey::new([format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)])
}

fn parts() -> AlertParts {
    AlertParts {
        group_by: vec!["ip".into()],
        when: None,
        realert: None,
        resolve: None,
        absent: None,
        forget_after: None,
        max_groups: None,
    }
}

fn threshold() -> AlertParts {
    AlertParts {
        when: Some(When {
            count: 5,
            within: Duration::from_secs(60),
        }),
        realert: Some(Duration::from_secs(300)),
        resolve: Some(Resolve {
            after: Duration::from_secs(600),
            notify: true,
        }),
        ..parts()
    }
}

/// Bytes held by a tracker of `spec` after each of 100,000 keys matched `n_matches` times (all
/// within a second, so that windows hold them all), with its changes committed.
fn measure(name: &str, spec: AlertParts, n_matches: u64) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut tracker = Tracker::new("r", AlertSpec::new(spec).unwrap());
    tracker.caught_up(t(0));
    for round in 0..n_matches {
        for i in 0..N_KEYS {
            let at = t(round * 10 + i / 1000);
            black_box(tracker.on_match(&ip(i), at, at));
        }
    }
    let peak = LIVE.load(Ordering::Relaxed) - before;
    let changes: TrackerChanges = tracker.changes();
    tracker.committed(&changes);
    drop(changes);
    let held = LIVE.load(Ordering::Relaxed) - before;
    let stats = tracker.stats();
    println!(
        "{name:<44} {:>7} keys {:>6} firing: {:>6.1} MB held ({:>4} B a key), {:>6.1} MB before commit",
        stats.n_keys,
        stats.n_firing,
        held as f64 / 1e6,
        held / stats.n_keys.max(1) as isize,
        peak as f64 / 1e6,
    );
    assert!(
        held < LIMIT_BYTES,
        "{name}: {held} bytes for {N_KEYS} keys, over issue 13's 50 MB"
    );
    drop(tracker);
    held
}

fn memory() {
    println!("heap held by one rule's Tracker (counting allocator):");
    measure("when 5/1m, 4 matches a key (windows)", threshold(), 4);
    measure("when 5/1m, 5 matches a key (incidents)", threshold(), 5);
    measure(
        "realert+resolve, 10 matches a key (folded)",
        threshold(),
        10,
    );
    measure(
        "absent 10m (heartbeats)",
        AlertParts {
            absent: Some(Absent {
                for_: Duration::from_secs(600),
            }),
            ..parts()
        },
        1,
    );
    let mut tracker = Tracker::new("plain", AlertSpec::plain());
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..1_000_000 {
        black_box(tracker.on_match(&GroupKey::empty(), t(i), t(i)));
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!("plain rule, 1,000,000 matches: {held} B held besides the rule name");
    assert_eq!(held, 0, "a plain rule keeps nothing");
}

fn speed(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracker_on_match");
    let mut plain = Tracker::new("plain", AlertSpec::plain());
    let at = t(0);
    let empty = GroupKey::empty();
    group.bench_function("baseline (black_box of the arguments)", |b| {
        b.iter(|| black_box((black_box(&empty), at, at)))
    });
    group.bench_function("plain", |b| {
        b.iter(|| black_box(plain.on_match(black_box(&empty), at, at)))
    });
    let mut known = Tracker::new("r", AlertSpec::new(threshold()).unwrap());
    known.caught_up(t(0));
    let key = ip(7);
    let mut now = 0;
    group.bench_function("known key, firing", |b| {
        b.iter(|| {
            now += 1;
            black_box(known.on_match(black_box(&key), t(now), t(now)))
        })
    });
    let mut full = Tracker::new(
        "r",
        AlertSpec::new(AlertParts {
            max_groups: Some(10_000),
            ..threshold()
        })
        .unwrap(),
    );
    full.caught_up(t(0));
    let keys: Vec<GroupKey> = (0..100_000).map(ip).collect();
    let mut i = 0;
    group.bench_function("new key at max_groups (evicts)", |b| {
        b.iter(|| {
            i += 1;
            let key = &keys[i % keys.len()];
            black_box(full.on_match(key, t(i as u64), t(i as u64)))
        })
    });
    group.finish();
}

criterion_group!(benches, speed);

fn main() {
    memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
