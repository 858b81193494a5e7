//! `dingtail test [-c CONFIG] [--rules FILE]... LOGFILE|- [--rule NAME] [--show-unmatched]
//! [--render]`: the `fail2ban-regex` of dingtail. Scans a log (or stdin) with the rules loaded
//! exactly as the daemon loads them and prints lines scanned, time, lines/s and MB/s, matches per
//! rule, the first matching lines of each rule with their captures, optionally the unmatched
//! lines, and with `--render` the messages the daemon would send for the whole log as one burst.
//!
//! Which rules: those of `--input`, else of the input whose globs match the log's path, else of
//! every input. When that input has `multiline:`, lines are joined with `tail::multiline::Joiner`
//! exactly as the daemon joins them (stack traces are single events). Otherwise, and without
//! `--show-unmatched`, the log is scanned buffer by buffer with `RuleSet::scan_buffer`, which
//! checks only the lines holding a candidate: this is the fast path the benchmarks measure.
//!
//! Exit 0 when every rule compiled (whatever matched), 2 for usage, config or I/O errors.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use crate::batch::{Batch, Hit};
use crate::cli::check::files_now;
use crate::config::diag::did_you_mean;
use crate::config::rules::RuleSource;
use crate::config::{DEFAULT_CONFIG_PATH, MultilineConfig};
use crate::daemon::deliver;
use crate::dingtalk;
use crate::event::{FileId, LogLine};
use crate::intake::multiline::Joiner;
use crate::pipeline::Pipeline;
use crate::render::DEFAULT_MAX_TEXT_BYTES;
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

/// Bytes read per chunk (the unit `scan_buffer` searches).
const CHUNK_BYTES: usize = 1 << 20;

/// Arguments of `dingtail test`.
#[derive(Debug, clap::Args)]
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
    /// Use the rules (and multiline settings) of this input; by default the input whose paths
    /// match LOGFILE, else the rules of every input.
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
}

/// Runs `dingtail test`.
pub fn run(args: TestArgs) -> ExitCode {
    match test(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err:#}");
            ExitCode::from(2)
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
    log_name: String,
    stats: Vec<RuleStats>,
    n_lines: u64,
    n_events: u64,
    n_matched: u64,
    unmatched: Vec<(u64, String)>,
    batches: BTreeMap<String, Batch>,
    started: SystemTime,
}

fn test(args: &TestArgs) -> anyhow::Result<()> {
    let source = if args.rules.is_empty() {
        RuleSource::Globs
    } else {
        RuleSource::Files(args.rules.clone())
    };
    let pipeline = match Pipeline::load_with(&args.config, &source) {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                eprintln!("{diagnostic}");
            }
            anyhow::bail!("{}: invalid config or rules", args.config.display());
        }
    };
    for warning in &pipeline.warnings {
        eprintln!("warning: {warning}");
    }
    let (input, how) = choose_input(args, &pipeline)?;
    let rule_set = select_rules(args, &pipeline, input.as_deref())?;
    let multiline = input
        .as_ref()
        .and_then(|name| pipeline.config.inputs.get(name))
        .and_then(|input| input.multiline.clone());
    emit(&format!(
        "input: {} ({how}), {} rule{}, multiline: {}\n",
        input.as_deref().unwrap_or("all inputs"),
        rule_set.rules().len(),
        if rule_set.rules().len() == 1 { "" } else { "s" },
        if multiline.is_some() { "yes" } else { "no" }
    ));
    let mut scan = Scan {
        args,
        pipeline: &pipeline,
        rule_set: &rule_set,
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
        unmatched: Vec::new(),
        batches: BTreeMap::new(),
        started: SystemTime::now(),
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
    let n_bytes = match &multiline {
        None if !args.show_unmatched => scan.fast(&mut reader)?,
        _ => scan.line_by_line(&mut reader, multiline.as_ref())?,
    };
    let elapsed = clock.elapsed().as_secs_f64().max(1e-9);
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
    /// Scans whole buffers, checking only candidate lines; returns the bytes read.
    fn fast(&mut self, reader: &mut dyn Read) -> anyhow::Result<u64> {
        let mut n_bytes = 0u64;
        let mut matches = Vec::new();
        read_chunks(reader, |chunk| {
            n_bytes += chunk.len() as u64;
            let mut counted_to = 0usize;
            let mut line_no = self.n_lines;
            let rule_set = self.rule_set;
            let mut found: Vec<(u64, String, Vec<RuleMatch>)> = Vec::new();
            rule_set.scan_buffer(chunk, &mut matches, |offset, line, hits| {
                line_no += count_newlines(chunk.get(counted_to..offset).unwrap_or_default());
                counted_to = offset;
                found.push((line_no + 1, line.to_string(), hits.to_vec()));
            });
            for (line_no, line, hits) in found {
                self.record(line_no, &line, &hits);
            }
            let n_chunk_lines =
                count_newlines(chunk) + u64::from(chunk.last().is_some_and(|last| *last != b'\n'));
            self.n_lines += n_chunk_lines;
            self.n_events += n_chunk_lines;
        })?;
        Ok(n_bytes)
    }

    /// Feeds lines one by one (through the joiner when the input has `multiline:`).
    fn line_by_line(
        &mut self,
        reader: &mut dyn Read,
        multiline: Option<&MultilineConfig>,
    ) -> anyhow::Result<u64> {
        let mut joiner = multiline.map(Joiner::new);
        // The line numbers of lines pushed into the joiner and not yet out, by start offset.
        let mut pending: VecDeque<(u64, u64)> = VecDeque::new();
        let mut matches = Vec::new();
        let mut offset = 0u64;
        // Nothing times out: the whole file is read "at once", as a backlog is by the daemon.
        let now = Instant::now();
        let read_at = SystemTime::now();
        read_chunks(reader, |chunk| {
            let mut start = 0usize;
            while start < chunk.len() {
                let end = chunk
                    .get(start..)
                    .and_then(|rest| memchr::memchr(b'\n', rest))
                    .map_or(chunk.len(), |i| start + i);
                let bytes = chunk.get(start..end).unwrap_or_default();
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                self.n_lines += 1;
                let line = LogLine {
                    input: self.rule_set.input().to_string(),
                    file_id: FileId(0),
                    path: PathBuf::from(&self.log_name),
                    start_offset: offset,
                    end_offset: offset + (end + 1 - start) as u64,
                    text: String::from_utf8_lossy(bytes).into_owned(),
                    truncated: false,
                    read_at,
                };
                offset = line.end_offset;
                match &mut joiner {
                    Some(joiner) => {
                        pending.push_back((line.start_offset, self.n_lines));
                        if let Some(event) = joiner.push(line, now) {
                            let line_no = event_line(&mut pending, event.start_offset);
                            self.event(line_no, &event, &mut matches);
                        }
                    }
                    None => {
                        let line_no = self.n_lines;
                        self.event(line_no, &line, &mut matches);
                    }
                }
                start = end + 1;
            }
        })?;
        if let Some(event) = joiner.as_mut().and_then(Joiner::flush) {
            let line_no = event_line(&mut pending, event.start_offset);
            self.event(line_no, &event, &mut matches);
        }
        Ok(offset)
    }

    /// Matches one line or joined event.
    fn event(&mut self, line_no: u64, event: &LogLine, matches: &mut Vec<RuleMatch>) {
        self.n_events += 1;
        self.rule_set.matches(&event.text, matches);
        if matches.is_empty() {
            if self.args.show_unmatched {
                self.unmatched.push((line_no, event.text.clone()));
            }
            return;
        }
        let hits = std::mem::take(matches);
        self.record(line_no, &event.text, &hits);
        *matches = hits;
    }

    /// Counts a matched line, keeps it as a sample, and adds it to the robots' batches.
    fn record(&mut self, line_no: u64, text: &str, hits: &[RuleMatch]) {
        self.n_matched += 1;
        for hit in hits {
            let Some(stats) = self.stats.get_mut(hit.rule) else {
                continue;
            };
            stats.count += 1;
            if stats.samples.len() < self.args.samples {
                stats
                    .samples
                    .push((line_no, text.to_string(), hit.captures.clone()));
            }
            if !self.args.render {
                continue;
            }
            let Some(rule) = self.rule_set.rules().get(hit.rule) else {
                continue;
            };
            let line = LogLine {
                input: self.rule_set.input().to_string(),
                file_id: FileId(0),
                path: PathBuf::from(&self.log_name),
                start_offset: 0,
                end_offset: 0,
                text: text.to_string(),
                truncated: false,
                read_at: self.started,
            };
            let host = self.pipeline.config.host.as_str();
            for robot in rule.robots() {
                let batch = self.batches.entry(robot.clone()).or_default();
                batch.add(
                    Hit {
                        rule: rule.name(),
                        severity: rule.severity(),
                        line: text,
                        file: &self.log_name,
                        host,
                        at: self.started,
                        mentions: rule.mentions(),
                    },
                    || self.pipeline.renderer.render_match(rule, hit, &line, host),
                );
            }
        }
    }

    fn report(&self, n_bytes: u64, seconds: f64) -> String {
        let mut out = String::new();
        let events = if self.n_events == self.n_lines {
            String::new()
        } else {
            format!(" ({} events)", self.n_events)
        };
        outln!(
            out,
            "scanned {} lines{events}, {} bytes in {seconds:.3} s: {:.0} lines/s, {:.1} MB/s",
            self.n_lines,
            n_bytes,
            self.n_lines as f64 / seconds,
            n_bytes as f64 / seconds / 1e6
        );
        outln!(
            out,
            "matched {} of {} {}",
            self.n_matched,
            self.n_events,
            if self.n_events == self.n_lines {
                "lines"
            } else {
                "events"
            }
        );
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
            for (robot, batch) in &self.batches {
                let rendered = self
                    .pipeline
                    .renderer
                    .message(batch, DEFAULT_MAX_TEXT_BYTES);
                outln!(out);
                outln!(out, "--- message to robot `{robot}` ---");
                outln!(out, "title: {}", rendered.title);
                if !rendered.mentions.is_empty() {
                    let mut at: Vec<String> = rendered
                        .mentions
                        .mobiles
                        .iter()
                        .chain(&rendered.mentions.user_ids)
                        .map(|who| format!("@{who}"))
                        .collect();
                    if rendered.mentions.all {
                        at.push("@all".to_string());
                    }
                    outln!(out, "at: {}", at.join(" "));
                }
                outln!(out, "{}", rendered.text.trim_end());
                // The exact request body the daemon would POST (keyword, mentions, line breaks
                // and size limit applied), as the `stdout` robot prints it.
                let keywords = self
                    .pipeline
                    .config
                    .robots
                    .get(robot)
                    .map(|robot| robot.keywords.as_slice())
                    .unwrap_or_default();
                match dingtalk::body(keywords, &deliver::message(self.pipeline, batch, keywords)) {
                    Ok(body) => outln!(out, "body: {body}"),
                    Err(err) => outln!(out, "body: cannot be built: {err}"),
                }
            }
            if self.batches.is_empty() {
                outln!(out);
                outln!(out, "--- no message: nothing matched ---");
            }
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

/// Reads `reader` to the end and calls `on_chunk` with runs of whole lines (the last chunk may
/// end without `\n`). A line longer than a chunk is read on until it ends.
fn read_chunks(reader: &mut dyn Read, mut on_chunk: impl FnMut(&[u8])) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES * 2);
    let mut scratch = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut scratch) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => anyhow::bail!("cannot read the log: {err}"),
        };
        if n == 0 {
            if !buf.is_empty() {
                on_chunk(&buf);
            }
            return Ok(());
        }
        buf.extend_from_slice(scratch.get(..n).unwrap_or_default());
        if buf.len() < CHUNK_BYTES {
            continue;
        }
        let Some(last_newline) = memchr::memrchr(b'\n', &buf) else {
            continue;
        };
        let cut = last_newline + 1;
        on_chunk(buf.get(..cut).unwrap_or_default());
        buf.drain(..cut);
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
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
