//! `Pipeline::load`: the main config, the compiled rules of every input and the compiled
//! templates, loaded together. The one loader used by `check`, `test`, `run` and reload, so that a
//! file `check` accepts is one `run` accepts.
//!
//! [`Pipeline::route`] is the one match → batch step: an event from intake is matched with its
//! input's rules and each hit is handed over, ready to be added to a robot's batch (by the
//! daemon's dispatcher, or by `dingtail test --render`), so the two cannot drift apart.
//!
//! Every problem of every stage (main file, rule files, regexes, templates) comes back in one
//! `Diagnostics`, except that rule files cannot be checked against a main file that failed to
//! load (their inputs and robots would all look unknown).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alert::CONTEXT_NAMES;
use crate::batch::{Annotation, Batch, Hit, Rendered};
use crate::config::diag::did_you_mean;
use crate::config::load::DEFAULT_PER_MINUTE as DINGTALK_PER_MINUTE;
use crate::config::rules::{RuleFiles, RuleSource, load as load_rules};
use crate::config::{Config, Diagnostic, Diagnostics};
use crate::event::Markup;
use crate::event::{LogLine, Mentions};
use crate::render::Renderer;
use crate::rules::{Rule, RuleMatch, RuleSet};

/// Everything `dingtail run` needs from the files on disk, validated and compiled.
#[derive(Debug)]
pub struct Pipeline {
    /// The main config.
    pub config: Config,
    /// The rules of each input, by input name (every input has an entry, maybe empty).
    pub rules: BTreeMap<String, RuleSet>,
    /// Every rule's templates.
    pub renderer: Renderer,
    /// The rule files loaded, for the reload watcher.
    pub rule_files: Vec<PathBuf>,
    /// Problems that do not make the load invalid (a rule glob that matches no file).
    pub warnings: Vec<Diagnostic>,
}

impl Pipeline {
    /// Loads the main config at `config_path` and the rule files its `rules:` globs match.
    ///
    /// # Errors
    /// Every problem found, each with file, line and column (and the rule).
    pub fn load(config_path: &Path) -> Result<Pipeline, Diagnostics> {
        Pipeline::load_with(config_path, &RuleSource::Globs)
    }

    /// [`Pipeline::load`], with the rules taken from `source` (`dingtail test --rules`).
    ///
    /// # Errors
    /// Every problem found, each with file, line and column (and the rule).
    pub fn load_with(config_path: &Path, source: &RuleSource) -> Result<Pipeline, Diagnostics> {
        let config = crate::config::load(config_path)?;
        let found = load_rules(&config, source);
        Pipeline::assemble(config, found)
    }

    /// The pipeline of a loaded `config` and of what loading its rules `found` (`dingtail test
    /// --match` makes both in memory): rule sets, templates, warnings.
    ///
    /// # Errors
    /// The rules' problems, and every problem of compiling their templates and rule sets.
    pub fn assemble(config: Config, found: RuleFiles) -> Result<Pipeline, Diagnostics> {
        let mut errors = found.errors;
        let renderer = match Renderer::new(&found.specs, &config) {
            Ok(renderer) => Some(renderer),
            Err(diags) => {
                errors.0.extend(diags.0);
                None
            }
        };
        let mut rules = BTreeMap::new();
        for input in config.inputs.keys() {
            let input_rules: Vec<Rule> = found
                .specs
                .iter()
                .filter(|spec| spec.inputs.contains(input))
                .map(Rule::new)
                .collect();
            match RuleSet::new(input, input_rules) {
                Ok(rule_set) => {
                    rules.insert(input.clone(), rule_set);
                }
                Err(message) => errors.push(Diagnostic::at(&config.source, 0, 0, message)),
            }
        }
        let mut warnings = found.warnings;
        for robot in config.robots.values() {
            if robot.per_minute > DINGTALK_PER_MINUTE && robot.window >= Duration::from_secs(60) {
                warnings.push(Diagnostic::at(
                    &config.source,
                    0,
                    0,
                    format!(
                        "robot `{}`: per_minute {} is above DingTalk's {DINGTALK_PER_MINUTE} a minute; \
                         DingTalk blocks a robot that exceeds it for 10 minutes",
                        robot.name, robot.per_minute
                    ),
                ));
            }
        }
        if let Some(warning) = config
            .cluster
            .as_ref()
            .and_then(crate::config::load::cluster::fallback_warning)
        {
            warnings.push(Diagnostic::at(&config.source, 0, 0, warning));
        }
        if let Some(warning) = config
            .chat
            .as_ref()
            .and_then(crate::config::load::chat::admins_only_warning)
        {
            warnings.push(Diagnostic::at(&config.source, 0, 0, warning));
        }
        match renderer {
            Some(renderer) if errors.is_empty() => Ok(Pipeline {
                config,
                rules,
                renderer,
                rule_files: found.files,
                warnings,
            }),
            _ => Err(errors),
        }
    }

    /// Matches `line` with its input's rules (patterns and `where:`, `RuleSet::matches_line`)
    /// and hands each rule that matched to `each`; `buf`
    /// is scratch space reused across calls. Returns how many rules matched.
    pub fn route(
        &self,
        line: &LogLine,
        buf: &mut Vec<RuleMatch>,
        each: impl FnMut(&Routed<'_>),
    ) -> usize {
        let Some(rule_set) = self.rules.get(&*line.input) else {
            return 0;
        };
        rule_set.matches_line(line, buf);
        self.route_matches(rule_set, line, buf, each)
    }

    /// [`Pipeline::route`] for every event of `lines`, in order, with the same hits, but the
    /// events of one input that follow each other are searched together, as one buffer
    /// (`RuleSet::scan_text`, the whole-buffer candidate search of `dingtail test`'s
    /// `scan_buffer` on text known to be UTF-8): a batch
    /// of a hundred lines costs one pass of the literal searchers instead of a hundred (issue
    /// 18). An event whose text the buffer would cut or change (a multi-line event, a text
    /// ending in `\r`) is matched alone, and so is every event of an input with `where:` rules
    /// (`RuleSet::matches_line`: the text alone cannot answer them). `each` is also given the event's index in `lines`.
    /// Returns how many (event, rule) hits there were.
    pub fn route_batch(
        &self,
        lines: &[LogLine],
        scratch: &mut RouteScratch,
        mut each: impl FnMut(usize, &Routed<'_>),
    ) -> usize {
        let mut n = 0;
        let mut rest = lines;
        while let Some(first) = rest.first() {
            let base = lines.len() - rest.len();
            let len = rest
                .iter()
                .position(|line| line.input != first.input)
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(len);
            rest = after;
            let Some(rule_set) = self.rules.get(&*first.input) else {
                continue;
            };
            if rule_set.is_empty() {
                continue;
            }
            scratch.find(rule_set, run);
            for (index, found) in &scratch.found {
                if let Some(line) = run.get(*index) {
                    n += self.route_matches(rule_set, line, found, |routed| {
                        each(base + *index, routed);
                    });
                }
            }
        }
        n
    }

    /// Hands the rules of `rule_set` that matched `line` (`found`, from `RuleSet::matches` or
    /// `RuleSet::scan_buffer`) to `each`. Returns how many there were.
    pub fn route_matches(
        &self,
        rule_set: &RuleSet,
        line: &LogLine,
        found: &[RuleMatch],
        mut each: impl FnMut(&Routed<'_>),
    ) -> usize {
        if found.is_empty() {
            return 0;
        }
        let file = line.path.to_string_lossy();
        // A journal entry names its own host (`_HOSTNAME`); a file's lines are this machine's.
        let host = line.host().unwrap_or(&self.config.host);
        for m in found {
            let Some(rule) = rule_set.rules().get(m.rule) else {
                continue;
            };
            let mentions = self.renderer.mentions(rule, m, line, host);
            let top: Vec<(&str, &str)> = rule
                .top()
                .iter()
                .map(|name| {
                    let value = m
                        .captures
                        .iter()
                        .find(|(capture, _)| capture == name)
                        .map_or("", |(_, value)| value.as_str());
                    (name.as_str(), value)
                })
                .collect();
            each(&Routed {
                pipeline: self,
                rule,
                found: m,
                line,
                file: &file,
                host,
                mentions,
                top,
            });
        }
        found.len()
    }

    /// True when a rule named `name` is loaded (for any input).
    pub fn has_rule(&self, name: &str) -> bool {
        self.rules
            .values()
            .any(|set| set.rules().iter().any(|rule| rule.name() == name))
    }

    /// How many rules were loaded (a rule with several inputs counts once).
    pub fn n_rules(&self) -> usize {
        let mut names: Vec<&str> = self
            .rules
            .values()
            .flat_map(|set| set.rules().iter().map(Rule::name))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// Checks what a silence (`dingtail mute`, chat `mute`) names: a loaded rule, and `names`
    /// among its captures and the context names. The shell and the chat word the error.
    ///
    /// # Errors
    /// The first name that is not known, with the closest known one.
    pub fn check_silence_target<'n>(
        &self,
        rule: &str,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<(), TargetError> {
        let rules: Vec<&Rule> = self.rules.values().flat_map(|set| set.rules()).collect();
        let Some(found) = rules.iter().find(|r| r.name() == rule) else {
            return Err(TargetError::NoRule {
                rule: rule.to_owned(),
                hint: did_you_mean(rule, rules.iter().map(|r| r.name())).map(str::to_owned),
            });
        };
        let captures = found.capture_names();
        for name in names {
            if captures.contains(&name) || CONTEXT_NAMES.contains(&name) {
                continue;
            }
            let known = captures
                .iter()
                .copied()
                .chain(CONTEXT_NAMES.iter().copied());
            return Err(TargetError::NoName {
                rule: rule.to_owned(),
                name: name.to_owned(),
                hint: did_you_mean(name, known).map(str::to_owned),
            });
        }
        Ok(())
    }
}

/// What [`Pipeline::check_silence_target`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// No rule of that name is loaded.
    NoRule {
        /// The name given.
        rule: String,
        /// The closest loaded rule's name.
        hint: Option<String>,
    },
    /// The rule has no capture and there is no context value of that name.
    NoName {
        /// The rule.
        rule: String,
        /// The name given.
        name: String,
        /// The closest known name.
        hint: Option<String>,
    },
}

/// Scratch space of [`Pipeline::route_batch`], reused across calls so that following a busy
/// file allocates nothing per batch.
#[derive(Debug, Default)]
pub struct RouteScratch {
    /// The texts of a run of events, each followed by `\n` (UTF-8, as the texts are).
    buf: String,
    /// Where each event of the run that is in `buf` starts, with its index in the run.
    starts: Vec<(usize, usize)>,
    /// The run's events that matched: their index in the run and their matches, in order.
    found: Vec<(usize, Vec<RuleMatch>)>,
    /// `RuleSet::matches`'s output.
    out: Vec<RuleMatch>,
}

impl RouteScratch {
    /// Fills `found` with the events of `run` that match `rule_set`, in order.
    fn find(&mut self, rule_set: &RuleSet, run: &[LogLine]) {
        self.found.clear();
        if run.len() == 1 || rule_set.has_conditions() {
            // One event, or rules with `where:`, which the text alone cannot answer: each event
            // whole, as `Pipeline::route` does.
            for (index, line) in run.iter().enumerate() {
                rule_set.matches_line(line, &mut self.out);
                if !self.out.is_empty() {
                    self.found.push((index, std::mem::take(&mut self.out)));
                }
            }
            return;
        }
        self.buf.clear();
        self.starts.clear();
        let mut alone = Vec::new();
        for (index, line) in run.iter().enumerate() {
            // The buffer is cut at `\n` and a line's last `\r` is dropped: such texts would be
            // matched otherwise than by `RuleSet::matches`.
            if line.text.contains('\n') || line.text.ends_with('\r') {
                alone.push(index);
                continue;
            }
            self.starts.push((self.buf.len(), index));
            self.buf.push_str(&line.text);
            self.buf.push('\n');
        }
        let (starts, found) = (&self.starts, &mut self.found);
        rule_set.scan_text(&self.buf, &mut self.out, |offset, _, matches| {
            if let Ok(at) = starts.binary_search_by_key(&offset, |(start, _)| *start) {
                if let Some((_, index)) = starts.get(at) {
                    found.push((*index, matches.to_vec()));
                }
            }
        });
        if alone.is_empty() {
            return;
        }
        for index in alone {
            if let Some(line) = run.get(index) {
                rule_set.matches_line(line, &mut self.out);
                if !self.out.is_empty() {
                    self.found.push((index, std::mem::take(&mut self.out)));
                }
            }
        }
        self.found.sort_by_key(|(index, _)| *index);
    }
}

/// One rule that matched one event, ready to be batched for each of the rule's robots.
#[derive(Debug)]
pub struct Routed<'a> {
    pipeline: &'a Pipeline,
    /// The rule that matched.
    pub rule: &'a Rule,
    found: &'a RuleMatch,
    line: &'a LogLine,
    file: &'a str,
    /// The host the event comes from (`LogLine::host`, else the config's `host`).
    host: &'a str,
    /// Who the match @-mentions (templated `at:` entries rendered).
    mentions: Cow<'a, Mentions>,
    /// The values of the rule's `top:` captures.
    top: Vec<(&'a str, &'a str)>,
}

impl Routed<'_> {
    /// The match as a batch counts it: at the event's own time when its line has one.
    pub fn hit(&self) -> Hit<'_> {
        Hit {
            rule: self.rule.name(),
            severity: self.rule.severity(),
            line: &self.line.text,
            file: self.file,
            host: self.host,
            at: self.line.time(),
            mentions: &self.mentions,
            top: &self.top,
        }
    }

    /// The rule's title, text and link for this match, for `robot`'s messages (only rendered
    /// when it becomes a sample): escaped for the kind the rule's lone events go to `robot` as.
    pub fn render(&self, robot: &str) -> Rendered {
        let renderer = &self.pipeline.renderer;
        renderer.render_match(
            self.rule,
            self.found,
            self.line,
            self.host,
            renderer.markup_for(self.rule.name(), robot),
        )
    }

    /// The rule's title and text for this match as plain text (a chat reply shows it).
    pub fn render_plain(&self) -> Rendered {
        self.pipeline.renderer.render_match(
            self.rule,
            self.found,
            self.line,
            &self.pipeline.config.host,
            Markup::Plain,
        )
    }

    /// The robots the rule's alerts go to.
    pub fn robots(&self) -> &[String] {
        self.rule.robots()
    }

    /// The event that matched.
    pub fn line(&self) -> &LogLine {
        self.line
    }

    /// The renderer of the pipeline the match went through (its language and zone).
    pub fn renderer(&self) -> &Renderer {
        &self.pipeline.renderer
    }

    /// The value of `name` for this match, as a `group_by` key and a silence's `--where` see
    /// it: a context name (`host`, `file`, `input`, `rule`, `severity`) wins over a capture of
    /// the same name, as in templates; a capture that took no part in the match has none.
    pub fn value_of(&self, name: &str) -> Option<&str> {
        match name {
            "host" => Some(&self.pipeline.config.host),
            "file" => Some(self.file),
            "input" => Some(&self.line.input),
            "rule" => Some(self.rule.name()),
            "severity" => Some(self.rule.severity().as_str()),
            _ => self
                .found
                .captures
                .iter()
                .find(|(capture, _)| capture == name)
                .map(|(_, value)| value.as_str()),
        }
    }

    /// Adds the match to `robot`'s `batch` as a line standing for what `note` says
    /// (rendering it only if it becomes a sample).
    pub fn add_to(&self, robot: &str, note: Annotation, batch: &mut Batch) {
        batch.add_alert(self.hit(), note, || self.render(robot));
    }
}

#[cfg(test)]
mod tests;
