//! `dingtail test LOG --match REGEX [--exclude REGEX] [--template T]`: a pattern tried without a
//! config, like `fail2ban-regex LOG REGEX` (issue 12). The flags become a one-rule `Pipeline`
//! built in memory through the same loaders as a config on disk (the main config's parser for
//! an input `command-line` and a `stdout` robot `console`, the rule loader for the rule `--match`,
//! `Pipeline::assemble` for the rule set and the template), so the scan, the counts and the
//! report are exactly those of a rule-based `dingtail test`.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::Path;

use crate::cli::exit::Exit;
use crate::cli::test::TestArgs;
use crate::config::pattern::compile;
use crate::config::span::{Node, Pos, Style};
use crate::config::{Diagnostics, rules};
use crate::pipeline::Pipeline;

/// The name of the rule the flags make.
pub const RULE: &str = "--match";
/// The name of its input (the log is read whatever the input's paths say).
pub const INPUT: &str = "command-line";

/// The main config of an ad-hoc test: one input, one dry-run robot.
const CONFIG: &str = "\
inputs:
  command-line:
    paths: [/dev/stdin]
robots:
  console:
    webhook: stdout
";

/// The one-rule pipeline of `--match`, `--exclude` and `--template`.
///
/// # Errors
/// `Exit::Invalid` for a regex or template that does not compile (printed, with the flag and
/// the character).
pub fn pipeline(args: &TestArgs) -> Result<Pipeline, Exit> {
    let mut ok = true;
    for (flag, patterns) in [("--match", &args.matches), ("--exclude", &args.excludes)] {
        for pattern in patterns {
            if let Err(err) = compile(pattern) {
                eprintln!(
                    "{flag} `{pattern}`: {} (at character {})",
                    err.message,
                    err.offset + 1
                );
                ok = false;
            }
        }
    }
    if !ok {
        return Err(Exit::Invalid);
    }
    let origin = Path::new("(command line)");
    let config = crate::config::load::parse(origin, CONFIG, &|_| None).map_err(|diags| {
        // The text above is fixed: this is a bug, said as one.
        eprintln!("the ad-hoc config is invalid: {diags}");
        Exit::Invalid
    })?;
    let mut rule = serde_yaml::Mapping::new();
    let mut put = |key: &str, value: serde_yaml::Value| {
        rule.insert(serde_yaml::Value::from(key), value);
    };
    put("name", RULE.into());
    put("input", INPUT.into());
    put("robot", "console".into());
    put("match", strings(&args.matches));
    if !args.excludes.is_empty() {
        put("exclude", strings(&args.excludes));
    }
    if let Some(template) = &args.template {
        put("template", template.as_str().into());
    }
    let mut found = rules::from_value(&config, origin, &serde_yaml::Value::Mapping(rule));
    // A template's errors point into the flag's value: `--template:1:COLUMN`.
    for spec in &mut found.specs {
        if let Some(template) = spec.template.as_mut() {
            template.file = "--template".into();
            template.node = Some(Node {
                key: None,
                value: Pos { line: 1, column: 1 },
                style: Style::Plain,
            });
        }
    }
    Pipeline::assemble(config, found).map_err(|diagnostics: Diagnostics| {
        for diagnostic in diagnostics.iter() {
            eprintln!("{diagnostic}");
        }
        Exit::Invalid
    })
}

fn strings(values: &[String]) -> serde_yaml::Value {
    serde_yaml::Value::Sequence(values.iter().map(|v| v.as_str().into()).collect())
}
