//! `dingtail check [-c CONFIG] [--strict] [--as USER] [--ping ROBOT]`: loads the config and every
//! rule file exactly as `run` and reload do (through `Pipeline::load`), prints each problem as
//! `file:line:column: message`, then surveys what the valid config will meet on this machine
//! (`survey`: inputs without files, unreadable files, the state directory, rules and robots
//! that do nothing) and prints those as warnings, and a short summary of what would run: per
//! input the files matched now (and those it will not follow: compressed or binary, issue 19),
//! the robots, the rules, and the file descriptors (in use, the limit `run` gets, how many files
//! can be open at once).
//!
//! `--as USER` first takes the identity of the user the service runs as (like `setpriv
//! --reuid --regid --init-groups`), so that readability is checked for that user; `--ping ROBOT`
//! then sends a fixed test text through a configured robot (`cli::robot`, as `send --robot`).
//! Exit statuses are `cli::exit`'s: 0 valid (warnings included unless `--strict`), 1 invalid, 2
//! unreadable config or bad flags, and the send statuses for `--ping`.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use crate::alert::AlertSpec;
use crate::cli::exit::Exit;
use crate::cli::reading;
use crate::cli::robot::{self, PING_TEXT};
use crate::cli::service_user::ServiceUser;
use crate::config::rules::RuleSource;
use crate::config::{ChatConfig, ChatMode, DEFAULT_CONFIG_PATH, InputConfig, Webhook};
use crate::dingtalk::Mentions;
use crate::fdlimit;
use crate::noun;
use crate::pipeline::Pipeline;
use crate::rules::Rule;
use crate::survey::{self, Survey};
use crate::tail::discover::{InputGlobs, Scan};
use crate::tail::fingerprint::{HEAD_BYTES, read_range};
use crate::tail::sniff::{Skip, compressed_name, sniff};

/// Arguments of `dingtail check`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct CheckArgs {
    /// The main config file.
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Exit 1 when there are warnings (inputs without files, unreadable files, an unusable state
    /// directory, no rules, rules no input feeds, robots no rule uses).
    #[arg(long)]
    pub strict: bool,
    /// Check as this user (needs root): `USER` takes the user's groups from /etc/group,
    /// `USER:GROUP[,GROUP...]` names them (the first is the primary group). Names or numbers.
    #[arg(long = "as", value_name = "USER[:GROUPS]")]
    pub run_as: Option<String>,
    /// After a valid check, send a test message through this robot (refused when the robot is
    /// throttled or has spent its minute budget; the send counts in its rate history).
    #[arg(long, value_name = "ROBOT")]
    pub ping: Option<String>,
}

/// Runs `dingtail check`.
pub fn run(args: CheckArgs) -> ExitCode {
    check(&args).into()
}

fn check(args: &CheckArgs) -> Exit {
    if let Some(spec) = &args.run_as {
        let user = match ServiceUser::lookup(spec) {
            Ok(user) => user,
            Err(err) => {
                eprintln!("dingtail check: --as {spec}: {err}");
                return Exit::Usage;
            }
        };
        if let Err(err) = user.assume() {
            eprintln!("dingtail check: --as {spec}: {err}");
            return Exit::Usage;
        }
        eprintln!("dingtail check: checking as {user}");
    }
    let pipeline = match crate::cli::load_pipeline(&args.config, &RuleSource::Globs) {
        Ok(pipeline) => pipeline,
        Err(exit) => return exit,
    };
    let survey = survey::survey(&pipeline);
    for warning in &survey.warnings {
        eprintln!("warning: {warning}");
    }
    crate::cli::test::emit(&summary(&pipeline, &survey));
    if args.strict && !survey.warnings.is_empty() {
        eprintln!(
            "{}: {} (--strict)",
            args.config.display(),
            noun::count(survey.warnings.len(), "warning")
        );
        return Exit::Invalid;
    }
    match &args.ping {
        Some(name) => ping(&pipeline, name),
        None => Exit::Ok,
    }
}

/// `--ping ROBOT`: the fixed test text through the robot, as `send --robot` sends it.
fn ping(pipeline: &Pipeline, name: &str) -> Exit {
    let message = crate::dingtalk::Message::text(
        format!("{PING_TEXT} {}", pipeline.config.host),
        Mentions::default(),
    );
    match robot::send(
        &pipeline.config,
        name,
        &message,
        robot::retry_policy(),
        robot::TIMEOUT,
    ) {
        Ok(outcome) => {
            eprintln!("robot `{name}`: {outcome}");
            Exit::Ok
        }
        Err(failure) => {
            eprintln!("dingtail check: --ping {name}: {}", failure.message);
            failure.exit
        }
    }
}

/// What `check` prints for a valid config.
pub fn summary(pipeline: &Pipeline, survey: &Survey) -> String {
    let config = &pipeline.config;
    let mut out = format!("{}: valid\n", config.source.display());
    out.push_str(&format!("inputs ({}):\n", config.inputs.len()));
    let mut n_all = 0;
    for (name, input) in &config.inputs {
        // The files `run` will follow: the survey's (compressed names are never matched), less
        // those whose first bytes are not text.
        let skipped = not_followed(input);
        let sniffed = skipped
            .iter()
            .filter(|(path, _)| compressed_name(path).is_none())
            .count();
        let n_files = survey
            .files
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(sniffed);
        n_all += n_files;
        let rules: Vec<&str> = pipeline
            .rules
            .get(name)
            .map(|set| set.rules().iter().map(Rule::name).collect())
            .unwrap_or_default();
        let source = match &input.journald {
            Some(journald) => reading::journal(journald, &input.decoding),
            None => format!(
                "{} now{}",
                noun::count(n_files, "file"),
                reading::suffix(input)
            ),
        };
        out.push_str(&format!(
            "  {name}: {source}, {}{}{}\n",
            noun::count(rules.len(), "rule"),
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
            Webhook::Console => "console (dry run, for people)",
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
        "messages: language {}, times in {} (host {})\n",
        config.language.as_str(),
        config.timezone.iana_name().unwrap_or("the machine's zone"),
        config.host
    ));
    out.push_str(&format!(
        "rules: {} in {}\n",
        pipeline.n_rules(),
        noun::count(pipeline.rule_files.len(), "file")
    ));
    let mut kinds: Vec<(&str, String)> = pipeline
        .rules
        .values()
        .flat_map(|set| set.rules())
        .filter(|rule| !rule.alert().is_plain())
        .map(|rule| (rule.name(), alert_keys(rule.alert())))
        .collect();
    kinds.sort();
    kinds.dedup();
    if !kinds.is_empty() {
        out.push_str(&format!("alert kinds ({}):\n", kinds.len()));
        for (rule, keys) in kinds {
            out.push_str(&format!("  {rule}: {keys}\n"));
        }
    }
    if let Some(chat) = &config.chat {
        out.push_str(&chat_line(chat));
    }
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

/// A rule's alert keys in a few words: `per ip, 5 within 1m, realert 30m, resolve after 15m`.
fn alert_keys(spec: &AlertSpec) -> String {
    let d = |duration| humantime::format_duration(duration).to_string();
    let mut parts = Vec::new();
    if !spec.group_by().is_empty() {
        parts.push(format!("per {}", spec.group_by().join("+")));
    }
    if let Some(when) = spec.when() {
        parts.push(format!("{} within {}", when.count, d(when.within)));
    }
    if let Some(realert) = spec.realert() {
        parts.push(format!("realert {}", d(realert)));
    }
    if let Some(resolve) = spec.resolve() {
        let silent = if resolve.notify { "" } else { " (no notice)" };
        parts.push(format!("resolve after {}{silent}", d(resolve.after)));
    }
    if let Some(absent) = spec.absent() {
        parts.push(format!("heartbeat, absent after {}", d(absent.for_)));
    }
    if let Some(forget) = spec.forget_after() {
        parts.push(format!("forget after {}", d(forget)));
    }
    if spec.max_groups() != AlertSpec::DEFAULT_MAX_GROUPS {
        parts.push(format!("at most {} keys", spec.max_groups()));
    }
    parts.join(", ")
}

/// The chat line: how commands arrive and who may give them (never the secret).
fn chat_line(chat: &ChatConfig) -> String {
    let how = match chat.mode {
        ChatMode::Stream => format!("Stream through {} as {}", chat.api_base, chat.client_id),
        ChatMode::Http { listen } => format!("HTTP callbacks on {listen}/dingtalk/callback"),
    };
    let allow = &chat.allow;
    let mut who = if allow.users.is_empty() {
        "anyone".to_owned()
    } else {
        noun::count(allow.users.len(), "user")
    };
    if allow.admins_only {
        who.push_str(" (group admins only)");
    }
    let from = if allow.conversations.is_empty() {
        "any conversation".to_owned()
    } else {
        noun::count(allow.conversations.len(), "conversation")
    };
    format!("chat: {how}; commands from {who} in {from}\n")
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

/// The files an input matches but does not follow (compressed by name or by their first bytes,
/// or binary), as the tailer would decide.
fn not_followed(input: &InputConfig) -> Vec<(PathBuf, Skip)> {
    let Ok(globs) = InputGlobs::new(input) else {
        return Vec::new();
    };
    let mut scan = Scan::default();
    let files = globs.discover(&mut scan);
    let mut skipped = std::mem::take(&mut scan.skipped);
    for candidate in files {
        let head = std::fs::File::open(&candidate.path)
            .and_then(|file| read_range(&file, 0, HEAD_BYTES))
            .unwrap_or_default();
        if let Some(skip) = sniff(&head) {
            skipped.push((candidate.path, skip));
        }
    }
    skipped.sort();
    skipped.dedup();
    skipped
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
