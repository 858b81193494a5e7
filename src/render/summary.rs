//! The summary of a batch of several events, as a [`Draft`]: per rule (critical first), how many
//! times it fired (exactly), when first and last, on which hosts and in which files, with a few
//! distinct samples. A rule's heading is its `summary` template when it has one; the default
//! heading is built here. Laying the draft out and fitting it under DingTalk's limit (dropping
//! samples and sections with exact "and N more") is `dingtalk::compose`'s job.

use crate::batch::{Batch, RuleBatch};
use crate::dingtalk::draft::{Body, Draft, Fact, Heading, Section, plural};
use crate::event::Severity;
use crate::render::Renderer;
use crate::render::context::format_utc;

/// Hosts or files listed by name before "and N more".
const MAX_LISTED: usize = 3;

/// The summary draft of `batch`.
pub fn summary(renderer: &Renderer, batch: &Batch) -> Draft {
    let rules = batch.ordered();
    let severity = batch.severity().unwrap_or(Severity::Info);
    let title = format!(
        "[{}] {} from {}",
        severity.as_str(),
        plural(batch.count(), "alert"),
        plural(rules.len() as u64, "rule")
    );
    let sections = rules
        .iter()
        .map(|rule| Section {
            heading: heading(renderer, rule),
            facts: vec![
                listed("hosts", rule.hosts.iter(), false),
                listed("files", rule.files.iter(), true),
            ],
            samples: rule.samples.iter().map(|s| s.text.clone()).collect(),
            count: rule.count,
        })
        .collect();
    Draft {
        title,
        body: Body::Summary(sections),
        mentions: batch.mentions(),
        notes: Vec::new(),
    }
}

/// A rule's section heading: its `summary` template or the default.
fn heading(renderer: &Renderer, rule: &RuleBatch) -> Heading {
    match renderer.summary_heading(rule) {
        Some(custom) => Heading::Custom(custom),
        None => Heading::Named {
            name: rule.rule.clone(),
            facts: vec![
                rule.severity.as_str().to_string(),
                format!("{}×", rule.count),
                span(rule),
            ],
        },
    }
}

/// "first → last UTC", the date of `last` only when it differs.
fn span(rule: &RuleBatch) -> String {
    let seconds = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let (first, last) = (seconds(rule.first_seen), seconds(rule.last_seen));
    if first == last {
        return format!("{} UTC", format_utc(first, "%F %T"));
    }
    let last_format = if first / 86_400 == last / 86_400 {
        "%T"
    } else {
        "%F %T"
    };
    format!(
        "{} → {} UTC",
        format_utc(first, "%F %T"),
        format_utc(last, last_format)
    )
}

/// The first few items and how many more.
fn listed<'a>(label: &str, items: impl ExactSizeIterator<Item = &'a String>, code: bool) -> Fact {
    let n = items.len();
    Fact {
        label: label.to_string(),
        items: items.take(MAX_LISTED).cloned().collect(),
        n_more: n.saturating_sub(MAX_LISTED),
        code,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::batch::{Batch, Hit};
    use crate::config::RuleSpec;
    use crate::dingtalk::draft::markdown;
    use crate::event::{Mentions, Severity};
    use crate::render::Renderer;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_709_211_900 + seconds)
    }

    fn add(
        batch: &mut Batch,
        rule: &str,
        severity: Severity,
        line: &str,
        file: &str,
        t: u64,
        m: &Mentions,
    ) {
        batch.add(
            Hit {
                rule,
                severity,
                line,
                file,
                host: "web-1",
                at: at(t),
                mentions: m,
            },
            || (format!("{rule} title"), format!("sample {line}")),
        );
    }

    fn renderer() -> Renderer {
        Renderer::new(&Vec::<RuleSpec>::new()).unwrap()
    }

    #[test]
    fn a_lone_match_is_sent_as_itself() {
        let mut batch = Batch::default();
        let ops = Mentions {
            mobiles: vec!["138".into()],
            ..Mentions::default()
        };
        add(
            &mut batch,
            "oom",
            Severity::Critical,
            "killed",
            "/var/log/kern.log",
            0,
            &ops,
        );
        let draft = renderer().draft(&batch);
        assert_eq!(draft.title, "oom title");
        assert_eq!(
            markdown(&draft, 20_000),
            "#### oom title\n\nsample killed\n"
        );
        assert_eq!(draft.mentions.mobiles, ["138"]);
    }

    #[test]
    fn a_summary_is_grouped_critical_first_with_exact_counts() {
        let none = Mentions::default();
        let dba = Mentions {
            user_ids: vec!["dba1".into()],
            ..Mentions::default()
        };
        let mut batch = Batch::default();
        for i in 0..1000u64 {
            let file = format!("/var/log/nginx/{}.log", i % 5);
            add(
                &mut batch,
                "nginx-5xx",
                Severity::Warning,
                &format!("GET /{}", i % 9),
                &file,
                i,
                &none,
            );
        }
        add(
            &mut batch,
            "mysql-deadlock",
            Severity::Critical,
            "Deadlock found\n  at x",
            "/var/log/mysql.log",
            5,
            &dba,
        );
        add(
            &mut batch,
            "mysql-deadlock",
            Severity::Critical,
            "Deadlock again",
            "/var/log/mysql.log",
            90_000,
            &dba,
        );
        let draft = renderer().draft(&batch);
        assert_eq!(draft.title, "[critical] 1002 alerts from 2 rules");
        let text = &markdown(&draft, 20_000);
        let mysql = text.find("**mysql-deadlock** · critical · 2× · 2024-02-29 13:05:05 → 2024-03-01 14:05:00 UTC").unwrap();
        let nginx = text
            .find("**nginx-5xx** · warning · 1000× · 2024-02-29 13:05:00 → 13:21:39 UTC")
            .unwrap();
        assert!(mysql < nginx, "critical first:\n{text}");
        assert!(
            text.contains("- sample Deadlock found\n    at x\n"),
            "{text}"
        );
        assert!(
            text.contains("files: `/var/log/nginx/0.log`, `/var/log/nginx/1.log`, `/var/log/nginx/2.log`, and 2 more"),
            "{text}"
        );
        assert!(
            text.contains("- and 995 more\n"),
            "5 samples shown, the rest counted:\n{text}"
        );
        assert_eq!(draft.mentions.user_ids, ["dba1"]);
    }

    #[test]
    fn a_summary_fits_the_budget_and_keeps_counts_exact() {
        let none = Mentions::default();
        let mut batch = Batch::default();
        for r in 0..40u64 {
            for i in 0..(r + 1) {
                let line = format!("{} {}", "x".repeat(300), i);
                add(
                    &mut batch,
                    &format!("rule-{r:02}"),
                    Severity::Info,
                    &line,
                    "/f",
                    i,
                    &none,
                );
            }
        }
        let total: u64 = (1..=40).sum();
        let draft = renderer().draft(&batch);
        let text = markdown(&draft, 4_000);
        assert!(text.len() <= 4_000, "{}", text.len());
        assert!(
            draft
                .title
                .contains(&format!("{total} alerts from 40 rules"))
        );
        // The rules shown plus the rules left out add up to every rule and every alert.
        let shown: Vec<(u64, &str)> = text
            .lines()
            .filter(|l| l.starts_with("**rule-"))
            .map(|l| {
                let count = l.split(" · ").nth(2).unwrap().trim_end_matches('×');
                (count.parse().unwrap(), l)
            })
            .collect();
        let footer = text.lines().last().unwrap();
        let (n_rules, n_alerts) = {
            let words: Vec<&str> = footer.split(' ').collect();
            (
                words[1].parse::<u64>().unwrap(),
                words[4].trim_start_matches('(').parse::<u64>().unwrap(),
            )
        };
        assert_eq!(shown.len() as u64 + n_rules, 40, "{footer}");
        assert_eq!(
            shown.iter().map(|s| s.0).sum::<u64>() + n_alerts,
            total,
            "{footer}"
        );
    }
}
