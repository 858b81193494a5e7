//! `dingtail check [-c CONFIG]`: loads the config and every rule file exactly as `run` and reload
//! do (through `Pipeline::load`), prints each problem as `file:line:column: message`, or a short
//! summary of what would run: per input the files matched now (and those it will not follow:
//! compressed or binary), the robots, the rules, and the file descriptors (in use, the limit
//! `run` gets, how many files can be open at once). Exit 0 valid, 1 invalid.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{DEFAULT_CONFIG_PATH, InputConfig, Webhook};
use crate::fdlimit;
use crate::pipeline::Pipeline;
use crate::rules::Rule;
use crate::tail::discover::{InputGlobs, Scan};
use crate::tail::fingerprint::{HEAD_BYTES, read_range};
use crate::tail::sniff::{Skip, sniff};

/// Arguments of `dingtail check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The main config file.
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
}

/// Runs `dingtail check`.
pub fn run(args: CheckArgs) -> ExitCode {
    let pipeline = match Pipeline::load(&args.config) {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                eprintln!("{diagnostic}");
            }
            let n = diagnostics.0.len();
            eprintln!(
                "{}: invalid ({n} problem{})",
                args.config.display(),
                if n == 1 { "" } else { "s" }
            );
            return ExitCode::from(1);
        }
    };
    for warning in &pipeline.warnings {
        eprintln!("warning: {warning}");
    }
    crate::cli::test::emit(&summary(&pipeline));
    ExitCode::SUCCESS
}

/// What `check` prints for a valid config.
pub fn summary(pipeline: &Pipeline) -> String {
    let config = &pipeline.config;
    let mut out = format!("{}: valid\n", config.source.display());
    out.push_str(&format!("inputs ({}):\n", config.inputs.len()));
    let mut n_all = 0;
    for (name, input) in &config.inputs {
        let (files, skipped) = inspect(input);
        let n_files = files.len();
        n_all += n_files;
        let rules: Vec<&str> = pipeline
            .rules
            .get(name)
            .map(|set| set.rules().iter().map(Rule::name).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "  {name}: {n_files} file{} now, {} rule{}{}{}\n",
            if n_files == 1 { "" } else { "s" },
            rules.len(),
            if rules.len() == 1 { "" } else { "s" },
            if rules.is_empty() { "" } else { ": " },
            rules.join(", ")
        ));
        for (path, skip) in skipped {
            out.push_str(&format!("    not followed: {}: {skip}\n", path.display()));
        }
    }
    out.push_str(&format!("robots ({}):\n", config.robots.len()));
    for (name, robot) in &config.robots {
        let target = match robot.webhook {
            Webhook::Stdout => "stdout (dry run)",
            Webhook::Url(_) => "webhook",
        };
        out.push_str(&format!(
            "  {name}: {target}{}, {} per {}, linger {}\n",
            if robot.secret.is_some() {
                ", signed"
            } else {
                ""
            },
            robot.per_minute,
            humantime::format_duration(robot.window),
            humantime::format_duration(robot.linger)
        ));
    }
    out.push_str(&descriptors(n_all));
    out.push_str(&format!(
        "rules: {} in {} file{}\n",
        pipeline.n_rules(),
        pipeline.rule_files.len(),
        if pipeline.rule_files.len() == 1 {
            ""
        } else {
            "s"
        }
    ));
    out
}

/// The descriptor line: in use now, the limit `run` will have (the soft limit raised to the hard
/// one), and how many of the `n_files` matched now can be open at once.
fn descriptors(n_files: usize) -> String {
    let limit = fdlimit::current();
    let run_limit = limit.hard.map_or(limit.soft, |hard| hard.max(limit.soft));
    let budget = fdlimit::file_budget(run_limit);
    let in_use = fdlimit::count_open().map_or_else(|| "?".to_string(), |n| n.to_string());
    let mut line = format!(
        "descriptors: {in_use} in use, limit {} (hard {}",
        limit.soft,
        limit
            .hard
            .map_or_else(|| "unlimited".to_string(), |hard| hard.to_string())
    );
    if run_limit > limit.soft {
        line.push_str(&format!("; `run` raises it to {run_limit}"));
    }
    line.push_str(&format!(
        "); {n_files} file{} now, up to {budget} open at once ({} kept for sockets, the state and reloads)",
        if n_files == 1 { "" } else { "s" },
        fdlimit::reserve(run_limit)
    ));
    if n_files > budget {
        line.push_str(&format!(
            ": {} parked (closed while idle, reopened when they grow)",
            n_files - budget
        ));
    }
    line.push('\n');
    line
}

/// The files an input follows now (text), and the ones it matches but does not follow
/// (compressed by name or by their first bytes, or binary), as the tailer would decide.
fn inspect(input: &InputConfig) -> (Vec<PathBuf>, Vec<(PathBuf, Skip)>) {
    let Ok(globs) = InputGlobs::new(input) else {
        return (Vec::new(), Vec::new());
    };
    let mut scan = Scan::default();
    let mut files: Vec<PathBuf> = globs
        .discover(&mut scan)
        .into_iter()
        .map(|candidate| candidate.path)
        .collect();
    files.sort();
    files.dedup();
    let mut skipped = std::mem::take(&mut scan.skipped);
    files.retain(|path| {
        let head = std::fs::File::open(path)
            .and_then(|file| read_range(&file, 0, HEAD_BYTES))
            .unwrap_or_default();
        match sniff(&head) {
            Some(skip) => {
                skipped.push((path.clone(), skip));
                false
            }
            None => true,
        }
    });
    skipped.sort();
    skipped.dedup();
    (files, skipped)
}

/// The files an input's globs match now, without the excluded ones, found by the tailer's own
/// discovery (so `check` and `test` see exactly the files `run` would follow).
pub fn files_now(input: &InputConfig) -> Vec<PathBuf> {
    let Ok(globs) = InputGlobs::new(input) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = globs
        .discover(&mut Scan::default())
        .into_iter()
        .map(|candidate| candidate.path)
        .collect();
    files.sort();
    files.dedup();
    files
}
