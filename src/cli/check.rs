//! `dingtail check [-c CONFIG]`: loads the config and every rule file exactly as `run` and reload
//! do (through `Pipeline::load`), prints each problem as `file:line:column: message`, or a short
//! summary of what would run. Exit 0 valid, 1 invalid.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{DEFAULT_CONFIG_PATH, InputConfig, Webhook};
use crate::pipeline::Pipeline;
use crate::rules::Rule;
use crate::tail::discover::{InputGlobs, Scan};

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
    for (name, input) in &config.inputs {
        let n_files = files_now(input).len();
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
    if let Some(cluster) = &config.cluster {
        out.push_str(&format!(
            "cluster: host {} through {} (lease {}, {})\n",
            config.host,
            cluster.redis_shown,
            humantime::format_duration(cluster.lease),
            if cluster.fallback {
                format!(
                    "fallback after {}",
                    humantime::format_duration(cluster.fallback_after)
                )
            } else {
                "no fallback".to_owned()
            }
        ));
    }
    out
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
