//! `dingtail test [-c CONFIG] [--rules FILE]... LOGFILE|- [--rule NAME] [--show-unmatched]
//! [--render]`: the `fail2ban-regex` of dingtail. Scans a log (or stdin) with the rules loaded
//! exactly as the daemon loads them and prints lines scanned, time, lines/s and MB/s, matches per
//! rule, the first matching lines of each rule with their captures, optionally the unmatched
//! lines, and with `--render` the messages the daemon would send for the whole log as one burst.
//!
//! Which rules: those of `--input`, else of the input whose globs match the log's path, else of
//! every input. The log is read through the same intake as the daemon's tailer
//! (`intake::EventReader`: the input's `max_line_bytes`, `format` and `encoding`, multi-line
//! joining, CRLF, invalid UTF-8, and a last line without a newline counted as the daemon counts
//! it once the file is at rest) and matched through the same match → batch step
//! (`Pipeline::route_matches`, `where:` included), so the per-rule counts are the counts `run`
//! delivers. A journald input's log is journalctl's JSON (`journalctl -o json … | dingtail test
//! --input NAME -`), read entry by entry as the daemon reads it (`journal`). For plain UTF-8
//! text without multi-line joining, `where:` rules and `--show-unmatched`, runs of lines none of
//! which is over-long are searched whole with `RuleSet::scan_buffer` (`fast`), which checks only
//! the lines holding a candidate and agrees with matching line by line: this is the fast path
//! the benchmarks measure. With `--render`, rules with alert keys are replayed on the log's
//! event times (`timeline`: what would fire, repeat, resolve, go absent), and `burst` lays out
//! the messages the daemon would send.
//!
//! With `--match REGEX` (and `--exclude`, `--template`) no config is read: the flags make a
//! one-rule pipeline in memory (`adhoc`) and the log goes through the same scan and report.
//!
//! Exit (`cli::exit`): 0 when every rule compiled (whatever matched), 1 for an invalid config,
//! rule, regex or template, 2 for usage errors and a config or log that cannot be read.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

mod adhoc;
mod fast;
mod journal;
mod timeline;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use crate::batch::Batch;
use crate::cli::check::files_now;
use crate::cli::exit::Exit;
use crate::cli::reading;
use crate::config::diag::did_you_mean;
use crate::config::rules::RuleSource;
use crate::config::{DEFAULT_CONFIG_PATH, Format};
use crate::event::{FileId, LogLine};
use crate::fields::Context;
use crate::intake::timestamp::event_time;
use crate::intake::{EventReader, Framing, Origin};
use crate::noun;
use crate::pipeline::Pipeline;
use crate::rules::{Rule, RuleMatch, RuleSet};

/// `println!` into a `String`.
macro_rules! outln {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

mod burst;

/// Bytes read per chunk (the unit `scan_buffer` searches).
const CHUNK_BYTES: usize = 1 << 20;

/// Arguments of `dingtail test`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct TestArgs {
    /// The main config file (its inputs, robots, multiline settings and, unless `--rules` is
    /// given, its rule files).
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Use this rule file instead of the config's `rules:` globs (repeat for several).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// The log file to scan, or `-` for stdin.
    #[arg(value_name = "LOGFILE")]
    pub log: PathBuf,
    /// Only this rule (repeat for several).
    #[arg(long = "rule", value_name = "NAME")]
    pub rule: Vec<String>,
    /// Use the rules (and line settings) of this input; by default the input whose paths match
    /// LOGFILE, else the rules of every input.
    #[arg(long = "input", value_name = "NAME")]
    pub input: Option<String>,
    /// Print the lines (events) no rule matched.
    #[arg(long)]
    pub show_unmatched: bool,
    /// Print the messages the daemon would send for the whole log as one burst.
    #[arg(long)]
    pub render: bool,
    /// How many matching lines to print per rule.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub samples: usize,
    /// Try this regex without a config (repeat for several: any matching is a match).
    #[arg(
        long = "match",
        value_name = "REGEX",
        conflicts_with_all = ["rules", "rule", "input"],
        allow_hyphen_values = true
    )]
    pub matches: Vec<String>,
    /// With --match: a line matching this regex is not a match (repeatable).
    #[arg(
        long = "exclude",
        value_name = "REGEX",
        requires = "matches",
        allow_hyphen_values = true
    )]
    pub excludes: Vec<String>,
    /// With --match: the template of one event's text (Jinja; shown with --render).
    #[arg(
        long,
        value_name = "T",
        requires = "matches",
        allow_hyphen_values = true
    )]
    pub template: Option<String>,
}

/// Runs `dingtail test`.
pub fn run(args: TestArgs) -> ExitCode {
    let pipeline = if args.matches.is_empty() {
        let source = if args.rules.is_empty() {
            RuleSource::Globs
        } else {
            RuleSource::Files(args.rules.clone())
        };
        crate::cli::load_pipeline(&args.config, &source)
    } else {
        adhoc::pipeline(&args)
    };
    let pipeline = match pipeline {
        Ok(pipeline) => pipeline,
        Err(exit) => return exit.into(),
    };
    match test(&args, &pipeline) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", crate::cli::chain(&err));
            Exit::Usage.into()
        }
    }
}

/// What the scan found for one rule.
#[derive(Default)]
struct RuleStats {
    count: u64,
    samples: Vec<SampleLine>,
}

/// A matching line kept for printing: line number, text, captures.
type SampleLine = (u64, String, Vec<(String, String)>);

/// The state of one scan.
struct Scan<'a> {
    args: &'a TestArgs,
    pipeline: &'a Pipeline,
    rule_set: &'a RuleSet,
    framing: Framing,
    log_name: String,
    stats: Vec<RuleStats>,
    n_lines: u64,
    n_events: u64,
    n_matched: u64,
    /// Events not in the input's format, matched as plain text.
    n_invalid: u64,
    /// Lines of journalctl's output that were no entry.
    n_skipped: u64,
    unmatched: Vec<(u64, String)>,
    batches: BTreeMap<String, Batch>,
    started: SystemTime,
    /// Nothing times out: the whole log is read "at once", as a backlog is by the daemon.
    now: Instant,
    matches: Vec<RuleMatch>,
    /// The replay of rules with alert keys (`--render`).
    timeline: timeline::Timeline,
}

fn test(args: &TestArgs, pipeline: &Pipeline) -> anyhow::Result<()> {
    for warning in &pipeline.warnings {
        eprintln!("warning: {warning}");
    }
    let (input, how) = choose_input(args, pipeline)?;
    let rule_set = select_rules(args, pipeline, input.as_deref())?;
    let input_config = input
        .as_ref()
        .and_then(|name| pipeline.config.inputs.get(name));
    let framing = input_config.map_or_else(Framing::plain, Framing::of);
    emit(&format!(
        "input: {} ({how}), {}{}, multiline: {}\n",
        input.as_deref().unwrap_or("all inputs"),
        noun::count(rule_set.rules().len(), "rule"),
        input_config.map(reading::suffix).unwrap_or_default(),
        if framing.multiline.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    // Whole buffers of plain UTF-8 text, when nothing else (joining, `where:`, a format or an
    // encoding) asks for the events themselves.
    let fast = framing.multiline.is_none()
        && !args.show_unmatched
        && framing.decoding.format == Format::Plain
        && framing.decoding.encoding.is_none()
        && !rule_set.has_conditions()
        && input_config.is_none_or(|input| input.journald.is_none());
    let mut scan = Scan {
        args,
        pipeline,
        rule_set: &rule_set,
        framing,
        log_name: if args.log == Path::new("-") {
            "<stdin>".to_string()
        } else {
            args.log.display().to_string()
        },
        stats: rule_set
            .rules()
            .iter()
            .map(|_| RuleStats::default())
            .collect(),
        n_lines: 0,
        n_events: 0,
        n_matched: 0,
        n_invalid: 0,
        n_skipped: 0,
        unmatched: Vec::new(),
        batches: BTreeMap::new(),
        started: SystemTime::now(),
        now: Instant::now(),
        matches: Vec::new(),
        timeline: timeline::Timeline::new(&rule_set),
    };
    let mut reader: Box<dyn Read> = if args.log == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(
            File::open(&args.log)
                .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", args.log.display()))?,
        )
    };
    let clock = Instant::now();
    let n_bytes = match input_config {
        Some(input) if input.journald.is_some() => scan.journal(&mut reader, input)?,
        _ if fast => scan.fast(&mut reader)?,
        _ => scan.whole(&mut reader)?,
    };
    let elapsed = clock.elapsed().as_secs_f64().max(1e-9);
    if args.render {
        scan.timeline.finish(pipeline, &rule_set, &mut scan.batches);
    }
    emit(&scan.report(n_bytes, elapsed));
    Ok(())
}

/// The input whose rules to use, and how it was chosen.
fn choose_input(
    args: &TestArgs,
    pipeline: &Pipeline,
) -> anyhow::Result<(Option<String>, &'static str)> {
    if let Some(name) = &args.input {
        if !pipeline.config.inputs.contains_key(name) {
            let hint = did_you_mean(name, pipeline.config.inputs.keys().map(String::as_str))
                .map(|best| format!(" (did you mean `{best}`?)"))
                .unwrap_or_default();
            anyhow::bail!("unknown input `{name}`{hint}");
        }
        return Ok((Some(name.clone()), "--input"));
    }
    if let Ok(log) = args.log.canonicalize() {
        for (name, input) in &pipeline.config.inputs {
            let matched = files_now(input)
                .iter()
                .any(|file| file.canonicalize().is_ok_and(|file| file == log));
            if matched {
                return Ok((Some(name.clone()), "its paths match the log"));
            }
        }
    }
    if !args.matches.is_empty() {
        return Ok((Some(adhoc::INPUT.to_string()), "--match"));
    }
    if pipeline.config.inputs.len() == 1 {
        let name = pipeline.config.inputs.keys().next().cloned();
        return Ok((name, "the only input"));
    }
    Ok((None, "no input's paths match the log"))
}

/// The rule set to scan with: the input's (or every input's), narrowed to `--rule`.
fn select_rules(
    args: &TestArgs,
    pipeline: &Pipeline,
    input: Option<&str>,
) -> anyhow::Result<RuleSet> {
    let mut rules: Vec<Rule> = Vec::new();
    for (name, set) in &pipeline.rules {
        if input.is_some_and(|input| input != name) {
            continue;
        }
        for rule in set.rules() {
            if !rules.iter().any(|r| r.name() == rule.name()) {
                rules.push(rule.clone());
            }
        }
    }
    for wanted in &args.rule {
        if !rules.iter().any(|r| r.name() == wanted) {
            let hint = did_you_mean(wanted, rules.iter().map(Rule::name))
                .map(|best| format!(" (did you mean `{best}`?)"))
                .unwrap_or_default();
            anyhow::bail!(
                "no rule `{wanted}` among the rules of {}{hint}",
                input.unwrap_or("any input")
            );
        }
    }
    if !args.rule.is_empty() {
        rules.retain(|rule| args.rule.iter().any(|wanted| wanted == rule.name()));
    }
    RuleSet::new(input.unwrap_or("*"), rules).map_err(anyhow::Error::msg)
}

impl Scan<'_> {
    /// Reads the whole log through one event reader (multi-line joining, unmatched lines).
    /// Returns the bytes read.
    fn whole(&mut self, reader: &mut dyn Read) -> anyhow::Result<u64> {
        let mut events = self.event_reader(0);
        let mut pending: VecDeque<(u64, u64)> = VecDeque::new();
        let mut out: Vec<LogLine> = Vec::new();
        loop {
            let before = events.position();
            let mut budget = CHUNK_BYTES;
            events
                .read(
                    reader,
                    &mut budget,
                    usize::MAX,
                    self.now,
                    self.started,
                    &mut out,
                )
                .map_err(|err| anyhow::anyhow!("cannot read the log: {err}"))?;
            self.number(&mut events, &mut pending);
            self.events(&mut out, &mut pending);
            if events.position() == before {
                break;
            }
        }
        events.flush(self.now, self.started, &mut out);
        self.number(&mut events, &mut pending);
        self.events(&mut out, &mut pending);
        Ok(events.position())
    }

    /// Reads `chunk` (whole lines, starting at `offset` of the log) through a fresh event reader.
    fn read_events(&mut self, chunk: &[u8], offset: u64, is_last: bool) {
        let mut events = self.event_reader(offset);
        let mut pending: VecDeque<(u64, u64)> = VecDeque::new();
        let mut out: Vec<LogLine> = Vec::new();
        let mut src = chunk;
        let mut budget = usize::MAX;
        // Reading a slice cannot fail.
        let _infallible = events.read(
            &mut src,
            &mut budget,
            usize::MAX,
            self.now,
            self.started,
            &mut out,
        );
        if is_last {
            events.flush(self.now, self.started, &mut out);
        }
        self.number(&mut events, &mut pending);
        self.events(&mut out, &mut pending);
    }

    fn event_reader(&self, offset: u64) -> EventReader {
        let origin = Origin {
            input: self.rule_set.input().into(),
            file_id: FileId(0),
            path: Path::new(&self.log_name).into(),
        };
        let mut events = EventReader::new(&self.framing, origin, offset, self.now);
        events.record_line_starts();
        events
    }

    /// Numbers the raw lines `events` read since the last call.
    fn number(&mut self, events: &mut EventReader, pending: &mut VecDeque<(u64, u64)>) {
        for start in events.take_line_starts() {
            self.n_lines += 1;
            pending.push_back((start, self.n_lines));
        }
    }

    /// Matches the events in `out` (emptying it), each with the number of its first line.
    fn events(&mut self, out: &mut Vec<LogLine>, pending: &mut VecDeque<(u64, u64)>) {
        for event in out.drain(..) {
            let line_no = event_line(pending, event.start_offset);
            self.event(line_no, &event);
        }
    }

    /// Matches one event whose first line is line `line_no`.
    fn event(&mut self, line_no: u64, event: &LogLine) {
        self.n_events += 1;
        self.n_invalid += u64::from(event.invalid);
        let mut matches = std::mem::take(&mut self.matches);
        self.rule_set.matches_line(event, &mut matches);
        if matches.is_empty() {
            if self.args.show_unmatched {
                self.unmatched.push((line_no, event.text.clone()));
            }
        } else {
            self.record(line_no, event, &matches);
        }
        self.matches = matches;
    }

    /// A matched line as the daemon would have read it (stamped with its own time as the event
    /// reader stamps it).
    fn line(&self, start: u64, end: u64, text: String) -> LogLine {
        let event_time = self
            .framing
            .timestamp
            .as_ref()
            .and_then(|timestamp| event_time(timestamp, &text, self.started));
        LogLine {
            input: self.rule_set.input().into(),
            file_id: FileId(0),
            path: Path::new(&self.log_name).into(),
            start_offset: start,
            end_offset: end,
            text,
            truncated: false,
            invalid: false,
            read_at: self.started,
            event_time,
            context: Context::new(),
            fields: None,
        }
    }

    /// Counts a matched event, keeps it as a sample, and adds it to the robots' batches.
    fn record(&mut self, line_no: u64, event: &LogLine, hits: &[RuleMatch]) {
        self.n_matched += 1;
        for hit in hits {
            let Some(stats) = self.stats.get_mut(hit.rule) else {
                continue;
            };
            stats.count += 1;
            if stats.samples.len() < self.args.samples {
                stats
                    .samples
                    .push((line_no, event.text.clone(), hit.captures.clone()));
            }
        }
        if self.args.render {
            let batches = &mut self.batches;
            let timeline = &mut self.timeline;
            timeline.before(event.time(), self.pipeline, self.rule_set, batches);
            self.pipeline
                .route_matches(self.rule_set, event, hits, |routed| {
                    let Some(note) = timeline.on_match(routed, line_no) else {
                        return;
                    };
                    for robot in routed.robots() {
                        routed.add_to(robot, note, batches.entry(robot.clone()).or_default());
                    }
                });
        }
    }

    fn report(&self, n_bytes: u64, seconds: f64) -> String {
        let mut out = String::new();
        let events = if self.n_events == self.n_lines {
            String::new()
        } else {
            format!(" ({})", noun::count(self.n_events, "event"))
        };
        outln!(
            out,
            "scanned {}{events}, {} in {seconds:.3} s: {:.0} lines/s, {:.1} MB/s",
            noun::count(self.n_lines, "line"),
            noun::count(n_bytes, "byte"),
            self.n_lines as f64 / seconds,
            n_bytes as f64 / seconds / 1e6
        );
        outln!(
            out,
            "matched {} of {}",
            self.n_matched,
            noun::count(
                self.n_events,
                if self.n_events == self.n_lines {
                    "line"
                } else {
                    "event"
                }
            )
        );
        if self.n_invalid > 0 {
            outln!(
                out,
                "{} not in the input's format, matched as plain text",
                noun::count(self.n_invalid, "event")
            );
        }
        if self.n_skipped > 0 {
            outln!(
                out,
                "{} skipped: no journal entry",
                noun::count(self.n_skipped, "line")
            );
        }
        outln!(out);
        outln!(out, "matches per rule:");
        for (rule, stats) in self.rule_set.rules().iter().zip(&self.stats) {
            outln!(
                out,
                "  {}: {} ({})",
                rule.name(),
                stats.count,
                rule.severity().as_str()
            );
        }
        for (rule, stats) in self.rule_set.rules().iter().zip(&self.stats) {
            if stats.samples.is_empty() {
                continue;
            }
            outln!(out);
            outln!(
                out,
                "{} — first {} of {}:",
                rule.name(),
                stats.samples.len(),
                stats.count
            );
            for (line_no, text, captures) in &stats.samples {
                outln!(out, "  line {line_no}: {}", indent(text));
                for (name, value) in captures {
                    outln!(out, "      {name} = {value}");
                }
            }
        }
        if self.args.show_unmatched {
            outln!(out);
            outln!(out, "unmatched ({}):", self.unmatched.len());
            for (line_no, text) in &self.unmatched {
                outln!(out, "  line {line_no}: {}", indent(text));
            }
        }
        if self.args.render {
            self.timeline.report(&mut out);
            burst::render(self.pipeline, &self.batches, &mut out);
        }
        out
    }
}

/// Writes `text` to stdout; a closed pipe (`dingtail test … | head`) is not an error.
pub fn emit(text: &str) {
    let mut stdout = io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if err.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("cannot write to stdout: {err}");
        }
    }
}

/// The line number of the event starting at `start`, forgetting the lines before it.
fn event_line(pending: &mut VecDeque<(u64, u64)>, start: u64) -> u64 {
    while let Some(&(offset, line_no)) = pending.front() {
        if offset >= start {
            return line_no;
        }
        pending.pop_front();
    }
    0
}

/// Multi-line text indented to sit under its "line N:" label.
fn indent(text: &str) -> String {
    text.replace('\n', "\n          ")
}
