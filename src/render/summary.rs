//! The summary of a batch of several events: markdown that says, per rule (critical first), how
//! many times it fired (exactly), when first and last, on which hosts and in which files, with a
//! few distinct samples, and fits a byte budget.
//!
//! Fitting never changes a count: what does not fit is dropped whole (a sample, then whole rules
//! from the least severe end) and replaced by "and N more", where N is exact. A rule's heading is
//! its `summary` template when it has one; the default heading is built here.

use crate::batch::{Batch, RuleBatch, Sample};
use crate::event::Severity;
use crate::render::context::format_utc;
use crate::render::{Rendered, Renderer};

/// Hosts or files listed by name before "and N more".
const MAX_LISTED: usize = 3;
/// One sample's text is cut here, so one stack trace cannot push out every other sample.
const MAX_SAMPLE_BYTES: usize = 1024;
/// Kept free for the closing "and N more rules" line.
const FOOTER_RESERVE: usize = 96;

/// The summary message of `batch`, at most `max_bytes` long.
pub fn summary(renderer: &Renderer, batch: &Batch, max_bytes: usize) -> Rendered {
    let rules = batch.ordered();
    let severity = batch.severity().unwrap_or(Severity::Info);
    let total = batch.count();
    let title = format!(
        "[{}] {} from {}",
        severity.as_str(),
        plural(total, "alert"),
        plural(rules.len() as u64, "rule")
    );
    let mut text = format!("#### {title}\n");
    let mut omitted: Option<(usize, u64)> = None;
    for (k, rule) in rules.iter().enumerate() {
        let head = heading(renderer, rule);
        if text.len() + head.len() + FOOTER_RESERVE > max_bytes {
            let rest = rules.get(k..).unwrap_or_default();
            omitted = Some((rest.len(), rest.iter().map(|r| r.count).sum()));
            break;
        }
        text.push_str(&head);
        let mut n_shown = 0u64;
        for sample in &rule.samples {
            let item = sample_item(sample);
            if text.len() + item.len() + FOOTER_RESERVE > max_bytes {
                break;
            }
            text.push_str(&item);
            n_shown += 1;
        }
        let n_more = rule.count.saturating_sub(n_shown);
        if n_more > 0 && n_shown > 0 {
            text.push_str(&format!("- and {n_more} more\n"));
        }
    }
    if let Some((n_rules, n_alerts)) = omitted {
        text.push_str(&format!(
            "\nand {} more ({})\n",
            plural(n_rules as u64, "rule"),
            plural(n_alerts, "alert")
        ));
    }
    Rendered {
        title,
        text: cut_to(text, max_bytes),
        mentions: batch.mentions(),
    }
}

/// A rule's section heading: its `summary` template or the default, then hosts and files.
fn heading(renderer: &Renderer, rule: &RuleBatch) -> String {
    let first = renderer.summary_heading(rule).unwrap_or_else(|| {
        format!(
            "**{}** · {} · {}× · {}",
            rule.rule,
            rule.severity.as_str(),
            rule.count,
            span(rule)
        )
    });
    format!(
        "\n{first}\n\nhosts: {} · files: {}\n\n",
        listed(rule.hosts.iter(), |h| h.clone()),
        listed(rule.files.iter(), |f| format!("`{f}`"))
    )
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

/// The first few items and "and N more".
fn listed<'a>(
    items: impl ExactSizeIterator<Item = &'a String>,
    show: impl Fn(&String) -> String,
) -> String {
    let n = items.len();
    let mut out: Vec<String> = items.take(MAX_LISTED).map(show).collect();
    if n > MAX_LISTED {
        out.push(format!("and {} more", n - MAX_LISTED));
    }
    out.join(", ")
}

/// A sample as a list item; continuation lines are indented to stay in the item.
fn sample_item(sample: &Sample) -> String {
    let text = cut_to(sample.text.clone(), MAX_SAMPLE_BYTES);
    format!("- {}\n", text.trim_end().replace('\n', "\n  "))
}

/// "1 alert", "2 alerts".
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `text` cut to at most `max_bytes` at a character boundary (at a line end when one is close),
/// ending with "…" when cut.
pub fn cut_to(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let ellipsis = "…";
    let mut end = max_bytes.saturating_sub(ellipsis.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(newline) = text.get(..end).and_then(|head| head.rfind('\n')) {
        if newline + 200 >= end {
            end = newline + 1;
        }
    }
    text.truncate(end);
    if text.len() + ellipsis.len() <= max_bytes {
        text.push_str(ellipsis);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::batch::{Batch, Hit};
    use crate::config::RuleSpec;
    use crate::event::{Mentions, Severity};
    use crate::render::Renderer;
    use crate::render::summary::cut_to;

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
        let rendered = renderer().message(&batch, 20_000);
        assert_eq!(rendered.title, "oom title");
        assert_eq!(rendered.text, "#### oom title\n\nsample killed\n");
        assert_eq!(rendered.mentions.mobiles, ["138"]);
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
        let rendered = renderer().message(&batch, 20_000);
        assert_eq!(rendered.title, "[critical] 1002 alerts from 2 rules");
        let text = &rendered.text;
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
        assert_eq!(rendered.mentions.user_ids, ["dba1"]);
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
        let rendered = renderer().message(&batch, 4_000);
        assert!(rendered.text.len() <= 4_000, "{}", rendered.text.len());
        assert!(
            rendered
                .title
                .contains(&format!("{total} alerts from 40 rules"))
        );
        // The rules shown plus the rules left out add up to every rule and every alert.
        let shown: Vec<(u64, &str)> = rendered
            .text
            .lines()
            .filter(|l| l.starts_with("**rule-"))
            .map(|l| {
                let count = l.split(" · ").nth(2).unwrap().trim_end_matches('×');
                (count.parse().unwrap(), l)
            })
            .collect();
        let footer = rendered.text.lines().last().unwrap();
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

    #[test]
    fn cutting_respects_characters_and_the_limit() {
        let text = "日本語".repeat(100);
        for max in [0, 1, 2, 3, 4, 10, 299] {
            let cut = cut_to(text.clone(), max);
            assert!(cut.len() <= max, "{max}: {}", cut.len());
        }
        assert_eq!(cut_to("short".into(), 10), "short");
    }
}
