//! `dingtail mute [-c CONFIG] RULE [--where KEY=VALUE]… --for DURATION [--reason TEXT]`,
//! `dingtail unmute [-c CONFIG] ID|RULE` and `dingtail mutes [-c CONFIG]` (issue 13): silences
//! from the shell.
//!
//! They write the state database directly (`state::Store::add_silence` and the rest, on the
//! same tables the daemon commits the chat's silences to), so a silence survives restarts and a running
//! daemon picks a change up within a second (it watches SQLite's `data_version`). The daemon
//! does the counting: what a silence muted is reported in the group once it ends, whether it
//! expires or is removed here. Each silence names who set it: the user running the command
//! (`SUDO_USER` under sudo, else `USER` or `LOGNAME`, else the uid).
//!
//! Exit (`cli::exit`): 0 done, 1 invalid config or rules (`mute` checks the rule and the
//! `--where` names against it), 2 usage (an unknown rule, name, silence or a bad duration), 6
//! the state database cannot be opened or written.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::alert::{CONTEXT_NAMES, Silence, SilenceDraft, SilenceId, SilenceRecord};
use crate::cli::exit::Exit;
use crate::config::rules::RuleSource;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::pipeline::{Pipeline, TargetError};
use crate::render::context::format;
use crate::state::{StateError, Store};

/// Arguments of `dingtail mute`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct MuteArgs {
    /// The main config file (its rules, and its `state_dir`).
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// The rule to mute.
    #[arg(value_name = "RULE")]
    pub rule: String,
    /// Only matches with this value (a capture of the rule, or host, file, input, rule,
    /// severity); repeat for several, all must hold.
    #[arg(long = "where", value_name = "KEY=VALUE", value_parser = parse_matcher)]
    pub matchers: Vec<(String, String)>,
    /// For how long (`30m`, `2h`, `1d`).
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Why (shown in `mutes` and in the message when it ends).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
}

/// Arguments of `dingtail unmute`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct UnmuteArgs {
    /// The main config file (its `state_dir`).
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// A silence's id (from `mutes`), or a rule: every silence of it.
    #[arg(value_name = "ID|RULE")]
    pub target: String,
}

/// Arguments of `dingtail mutes`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct MutesArgs {
    /// The main config file (its `state_dir` and `timezone`).
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
}

/// Runs `dingtail mute`.
pub fn mute(args: MuteArgs) -> ExitCode {
    let pipeline = match crate::cli::load_pipeline(&args.config, &RuleSource::Globs) {
        Ok(pipeline) => pipeline,
        Err(exit) => return exit.into(),
    };
    if let Err(message) = check_rule(&pipeline, &args.rule, &args.matchers) {
        eprintln!("dingtail mute: {message}");
        return Exit::Usage.into();
    }
    if args.duration < Duration::from_secs(1) {
        eprintln!("dingtail mute: --for must be at least 1s");
        return Exit::Usage.into();
    }
    let mut store = match open(&pipeline.config) {
        Ok(store) => store,
        Err(exit) => return exit.into(),
    };
    let now = SystemTime::now();
    let draft = SilenceDraft {
        rule: args.rule.clone(),
        matchers: args.matchers.clone(),
        starts: now,
        ends: now + args.duration,
        reason: args.reason.clone(),
        author: author(),
    };
    // Ids are 30 random bits: a clash is rare, and drawing again settles it.
    for _ in 0..16 {
        let id = SilenceId::from_bits(rand::random::<u64>());
        let silence = match Silence::new(id, draft.clone(), now) {
            Ok(silence) => silence,
            Err(err) => {
                eprintln!("dingtail mute: {err}");
                return Exit::Usage.into();
            }
        };
        match store.add_silence(&silence) {
            Ok(()) => {
                println!(
                    "muted rule `{}`{} until {} ({}), id {}; a running dingtail applies it within a second{}",
                    silence.rule(),
                    where_text(silence.matchers()),
                    time_text(&pipeline.config, silence.ends()),
                    humantime::format_duration(args.duration),
                    silence.id(),
                    if pipeline.config.cluster.is_some() {
                        " and shares it with every host of the cluster within a few seconds"
                    } else {
                        ""
                    }
                );
                return ExitCode::SUCCESS;
            }
            Err(StateError::Duplicate(_)) => {}
            Err(err) => {
                eprintln!("dingtail mute: cannot store the silence: {err}");
                return Exit::Failed.into();
            }
        }
    }
    eprintln!("dingtail mute: no free silence id after 16 draws");
    Exit::Failed.into()
}

/// Runs `dingtail unmute`.
pub fn unmute(args: UnmuteArgs) -> ExitCode {
    let config = match crate::cli::load_config(&args.config) {
        Ok(config) => config,
        Err(exit) => return exit.into(),
    };
    let mut store = match open(&config) {
        Ok(store) => store,
        Err(exit) => return exit.into(),
    };
    let removed = match SilenceId::parse(&args.target) {
        Some(id) => match store.remove_silence(&id) {
            Ok(Some(silence)) => Ok(vec![silence]),
            Ok(None) => store.remove_silences_of(&args.target),
            Err(err) => Err(err),
        },
        None => store.remove_silences_of(&args.target),
    };
    match removed {
        Ok(removed) if removed.is_empty() => {
            eprintln!(
                "dingtail unmute: no silence `{}` and no silence of a rule `{}` (see `dingtail mutes`)",
                args.target, args.target
            );
            Exit::Usage.into()
        }
        Ok(removed) => {
            for silence in removed {
                println!(
                    "unmuted {} (rule `{}`{}); a running dingtail reports what it muted",
                    silence.id(),
                    silence.rule(),
                    where_text(silence.matchers())
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("dingtail unmute: cannot remove the silence: {err}");
            Exit::Failed.into()
        }
    }
}

/// Runs `dingtail mutes`.
pub fn mutes(args: MutesArgs) -> ExitCode {
    let config = match crate::cli::load_config(&args.config) {
        Ok(config) => config,
        Err(exit) => return exit.into(),
    };
    let mut store = match open(&config) {
        Ok(store) => store,
        Err(exit) => return exit.into(),
    };
    let now = SystemTime::now();
    // Silences that ended with nothing left to report are cleaned up here too (the daemon does
    // it as they end; this covers a daemon that is not running).
    if let Err(err) = store.purge_ended_silences(now) {
        eprintln!("dingtail mutes: cannot clean up ended silences: {err}");
    }
    let (records, bad) = match store.list_silences() {
        Ok(listed) => listed,
        Err(err) => {
            eprintln!("dingtail mutes: cannot read the silences: {err}");
            return Exit::Failed.into();
        }
    };
    for problem in bad {
        eprintln!("warning: {problem}");
    }
    print!("{}", table(&config, &records, now));
    ExitCode::SUCCESS
}

/// The silences as a table: id, rule, where, until, by, muted so far, why.
fn table(config: &Config, records: &[SilenceRecord], now: SystemTime) -> String {
    if records.is_empty() {
        return "no silences\n".to_string();
    }
    let mut rows = vec![[
        "ID".to_string(),
        "RULE".to_string(),
        "WHERE".to_string(),
        "UNTIL".to_string(),
        "BY".to_string(),
        "MUTED".to_string(),
        "REASON".to_string(),
    ]];
    for record in records {
        let silence = &record.silence;
        let until = if silence.ends() <= now {
            format!("{} (ended)", time_text(config, silence.ends()))
        } else if silence.starts() > now {
            format!(
                "{} (from {})",
                time_text(config, silence.ends()),
                time_text(config, silence.starts())
            )
        } else {
            time_text(config, silence.ends())
        };
        let matchers: Vec<String> = silence
            .matchers()
            .iter()
            .map(|(name, value)| format!("{}={}", visible(name), visible(value)))
            .collect();
        rows.push([
            silence.id().to_string(),
            silence.rule().to_string(),
            if matchers.is_empty() {
                "-".to_string()
            } else {
                matchers.join(",")
            },
            until,
            visible(silence.author()),
            record.muted.matches.to_string(),
            visible(silence.reason()),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The rule and the `--where` names checked against the loaded rules, worded for the shell.
fn check_rule(
    pipeline: &Pipeline,
    rule: &str,
    matchers: &[(String, String)],
) -> Result<(), String> {
    let hint = |hint: Option<String>| {
        hint.map(|best| format!(" (did you mean `{best}`?)"))
            .unwrap_or_default()
    };
    match pipeline.check_silence_target(rule, matchers.iter().map(|(name, _)| name.as_str())) {
        Ok(()) => Ok(()),
        Err(TargetError::NoRule { rule, hint: best }) => {
            Err(format!("no rule `{rule}`{}", hint(best)))
        }
        Err(TargetError::NoName {
            rule,
            name,
            hint: best,
        }) => Err(format!(
            "rule `{rule}` has no capture `{name}`{}; --where takes its captures and {}",
            hint(best),
            CONTEXT_NAMES.join(", ")
        )),
    }
}

/// `KEY=VALUE`.
fn parse_matcher(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Opens the state database of `config`.
fn open(config: &Config) -> Result<Store, Exit> {
    Store::open(&config.state_dir).map_err(|err| {
        eprintln!("dingtail: cannot open the state database: {err}");
        Exit::Failed
    })
}

/// Who runs the command.
fn author() -> String {
    let named = |key: &str| {
        std::env::var(key)
            .ok()
            .filter(|name| !name.trim().is_empty())
    };
    let uid = rustix::process::getuid().as_raw();
    named("SUDO_USER")
        .or_else(|| named("USER"))
        .or_else(|| named("LOGNAME"))
        .or_else(|| {
            user_named(
                uid,
                &std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
            )
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The name of user `uid` in the text of `/etc/passwd`.
fn user_named(uid: u32, passwd: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let found = fields.nth(1)?.parse::<u32>().ok()? == uid;
        (found && !name.is_empty()).then(|| name.to_string())
    })
}

/// ` where ip=10.0.0.1, host=web-1`, or nothing.
fn where_text(matchers: &[(String, String)]) -> String {
    if matchers.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = matchers
        .iter()
        .map(|(name, value)| format!("{name}={}", visible(value)))
        .collect();
    format!(" where {}", pairs.join(", "))
}

/// `at` in the config's zone.
fn time_text(config: &Config, at: SystemTime) -> String {
    format(at, "%Y-%m-%d %H:%M:%S %:z", &config.timezone).unwrap_or_default()
}

/// Control characters shown as `\u{..}`: a reason or value must not drive the terminal.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::cli::mute::{parse_matcher, user_named, visible};

    #[test]
    fn matchers_and_text_from_the_shell() {
        assert_eq!(
            parse_matcher("ip=10.0.0.1"),
            Ok(("ip".into(), "10.0.0.1".into()))
        );
        assert_eq!(
            parse_matcher("path=/a=b"),
            Ok(("path".into(), "/a=b".into()))
        );
        assert!(parse_matcher("=x").is_err());
        assert!(parse_matcher("nothing").is_err());
        assert_eq!(visible("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        let passwd = "root:x:0:0:root:/root:/bin/bash\ndingtail:x:998:998::/var/lib/dingtail:/usr/sbin/nologin\n";
        assert_eq!(user_named(998, passwd).as_deref(), Some("dingtail"));
        assert_eq!(user_named(5, passwd), None);
    }
}
