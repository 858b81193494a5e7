//! The benchmark tooling under `benches/` must not rot (issue 7): the generator is deterministic
//! by seed and produces about the match rate it is asked for, the pattern converter gives grep
//! the same search as dingtail, and `benches/run.sh` runs end to end in a tiny mode. Nothing here
//! times anything; the figures themselves live in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::harness::{Dir, bin, describe, stdout_ok};

fn benches() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches")
}

fn ok(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("spawn");
    assert!(
        output.status.success(),
        "command failed{}",
        describe(cmd, &output)
    );
    output
}

/// `benches/genlog.py` output for `size` and `seed`.
fn genlog(size: &str, seed: u32, match_rate: &str) -> Vec<u8> {
    ok(Command::new("python3")
        .arg(benches().join("genlog.py"))
        .args(["--size", size, "--seed", &seed.to_string()])
        .args(["--match-rate", match_rate]))
    .stdout
}

const CONFIG: &str =
    "inputs:\n  app:\n    paths: [app.log]\nrobots:\n  ops:\n    webhook: stdout\nrules: []\n";

/// `(matched, lines)` from `dingtail test` with a benchmark rule file over `log`.
fn matched(dir: &Dir, rules: &str, log: &Path) -> (u64, u64) {
    let out = stdout_ok(
        dir.command()
            .args(["test", "-c", "dingtail.yaml", "--rules"])
            .arg(benches().join(rules))
            .arg(log),
    );
    let line = out
        .lines()
        .find(|line| line.starts_with("matched "))
        .unwrap_or_else(|| panic!("no `matched` line in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn genlog_is_deterministic_by_seed_and_sized() {
    let a = genlog("300K", 7, "0.001");
    let b = genlog("300K", 7, "0.001");
    let c = genlog("300K", 8, "0.001");
    assert_eq!(a, b, "the same seed must give the same log");
    assert_ne!(a, c, "another seed must give another log");
    assert!(
        (300 * 1024..310 * 1024).contains(&a.len()),
        "asked for 300K, got {} bytes",
        a.len()
    );
    // A smaller size of the same seed is a prefix of a bigger one.
    let big = genlog("600K", 7, "0.001");
    assert_eq!(&big[..a.len() - 200], &a[..a.len() - 200]);
}

#[test]
fn genlog_match_rate_is_what_the_rules_find_and_grep_agrees() {
    let dir = Dir::new("benches-rate");
    dir.create("dingtail.yaml", CONFIG);
    let log = dir.create("app.log", genlog("400K", 3, "0.05"));
    let (hits, lines) = matched(&dir, "rules-10.yaml", &log);
    let rate = hits as f64 / lines as f64;
    assert!(
        (0.02..0.08).contains(&rate),
        "asked for a 5 % match rate, the rules matched {hits} of {lines} lines"
    );
    // The 90 extra rules of rules-100 match nothing the generator writes: same lines.
    assert_eq!(matched(&dir, "rules-100.yaml", &log), (hits, lines));

    // The patterns converted for grep -E select exactly the same lines.
    let ere = ok(Command::new("python3")
        .arg(benches().join("patterns.py"))
        .arg(benches().join("rules-10.yaml"))
        .arg("ere"))
    .stdout;
    let ere = dir.create("p.ere", ere);
    let grep = ok(Command::new("grep")
        .arg("-E")
        .arg("-c")
        .arg("-f")
        .arg(&ere)
        .arg(&log))
    .stdout;
    assert_eq!(String::from_utf8_lossy(&grep).trim(), hits.to_string());
}

#[test]
fn run_sh_scan_and_latency_work_in_a_tiny_mode() {
    let dir = Dir::new("benches-run");
    let results = dir.join("results.txt");
    let output = ok(Command::new("bash")
        .arg(benches().join("run.sh"))
        .args(["scan", "latency"])
        .env("DINGTAIL", bin())
        .env("BENCH_SIZE", "200K")
        .env("BENCH_SLICE", "40K")
        .env("BENCH_RUNS", "1")
        .env("BENCH_FILES", "3")
        .env("BENCH_LINES", "3")
        .env("BENCH_DIR", dir.join("work"))
        .env("BENCH_RESULTS", &results));
    let text = std::fs::read_to_string(&results).unwrap();
    let value = |key: &str| -> String {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no `{key}` in the results:\n{text}"))
            .to_string()
    };
    // Every tool that ran found the same lines as dingtail.
    let dingtail = value("scan.rules10.dingtail.matched_lines");
    assert_eq!(value("scan.rules10.grep.matched_lines"), dingtail);
    assert_eq!(value("scan.rules100.dingtail.matched_lines"), dingtail);
    if !text.contains("skipped.rg") {
        assert_eq!(value("scan.rules100.rg.matched_lines"), dingtail);
    }
    assert!(
        value("scan.rules10.dingtail.mb_per_s")
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    // Every appended line reached the stand-in.
    assert_eq!(
        value("latency.missed"),
        "0",
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(value("latency.p99_ms").parse::<f64>().unwrap() > 0.0);
    // The big log is removed afterwards.
    assert!(
        !std::fs::read_dir(dir.join("work"))
            .unwrap()
            .any(|entry| entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("bench-")),
        "the generated log was left behind"
    );
}

#[test]
fn run_sh_steady_works_in_a_tiny_mode() {
    let dir = Dir::new("benches-steady");
    let results = dir.join("results.txt");
    ok(Command::new("bash")
        .arg(benches().join("run.sh"))
        .arg("steady")
        .env("DINGTAIL", bin())
        .env("BENCH_RUNS", "1")
        .env("BENCH_STEADY_RATES", "1000")
        .env("BENCH_STEADY_SECS", "1")
        .env("BENCH_STEADY_WARMUP", "0.5")
        .env("BENCH_STEADY_POOL", "200K")
        .env("BENCH_STEADY_TOOLS", "dingtail")
        .env("BENCH_DIR", dir.join("work"))
        .env("BENCH_RESULTS", &results));
    let text = std::fs::read_to_string(&results).unwrap();
    // The daemon was measured following the file: a figure, and no failure.
    let cpu = text
        .lines()
        .find_map(|line| line.strip_prefix("steady.lines1000.dingtail.cpu_percent_of_core "))
        .unwrap_or_else(|| panic!("no steady figure in the results:\n{text}"));
    assert!(cpu.parse::<f64>().unwrap() >= 0.0, "{text}");
    assert!(!text.contains("failed."), "{text}");
}
