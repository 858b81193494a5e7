//! `TopCounts`: a rule's `top:` capture summarised over a batch: how often each value came, so
//! that a summary can say "ip: 203.0.113.9 ×120, 198.51.100.7 ×45 … (37 distinct)".
//!
//! Counts are exact for every value counted. Memory is bounded: at most [`MAX_TOP_VALUES`]
//! distinct values per capture, rule and batch (each cut at [`MAX_TOP_VALUE_CHARS`]); a value
//! first seen after that is not counted by name, only in `n_uncounted`, and the summary says the
//! bound was passed. Pure: no I/O, no clock.

use std::collections::BTreeMap;

/// Distinct values counted per capture, rule and batch.
pub const MAX_TOP_VALUES: usize = 10_000;
/// A longer value is cut here (and counted with the others cut alike).
pub const MAX_TOP_VALUE_CHARS: usize = 200;

/// How often each value of one capture came in a rule's matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopCounts {
    /// The capture's name.
    pub capture: String,
    /// Value → exact count, at most [`MAX_TOP_VALUES`] values.
    pub counts: BTreeMap<String, u64>,
    /// Matches whose value was not counted by name: it came after the bound was reached.
    pub n_uncounted: u64,
}

impl TopCounts {
    /// Empty counts of `capture`.
    pub fn new(capture: &str) -> TopCounts {
        TopCounts {
            capture: capture.to_string(),
            ..TopCounts::default()
        }
    }

    /// Counts one match whose capture was `value` (an empty value, a capture that took no part
    /// in the match, is not counted).
    pub fn add(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        let value = cut(value);
        if let Some(count) = self.counts.get_mut(value.as_ref()) {
            *count += 1;
        } else if self.counts.len() < MAX_TOP_VALUES {
            self.counts.insert(value.into_owned(), 1);
        } else {
            self.n_uncounted += 1;
        }
    }

    /// Adds `other`'s counts (the same capture in an older batch). When the union has more than
    /// [`MAX_TOP_VALUES`] values, the least frequent go to `n_uncounted`.
    pub fn absorb(&mut self, other: TopCounts) {
        for (value, count) in other.counts {
            *self.counts.entry(value).or_default() += count;
        }
        self.n_uncounted += other.n_uncounted;
        if self.counts.len() > MAX_TOP_VALUES {
            let mut by_count: Vec<(u64, String)> = std::mem::take(&mut self.counts)
                .into_iter()
                .map(|(value, count)| (count, value))
                .collect();
            by_count.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            for (count, value) in by_count.into_iter() {
                if self.counts.len() < MAX_TOP_VALUES {
                    self.counts.insert(value, count);
                } else {
                    self.n_uncounted += count;
                }
            }
        }
    }

    /// The `n` most frequent values with their counts, most frequent first (ties by value).
    pub fn most_frequent(&self, n: usize) -> Vec<(&str, u64)> {
        let mut values: Vec<(&str, u64)> = self
            .counts
            .iter()
            .map(|(value, count)| (value.as_str(), *count))
            .collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        values.truncate(n);
        values
    }

    /// How many distinct values were counted.
    pub fn n_distinct(&self) -> usize {
        self.counts.len()
    }

    /// True when values came that were not counted by name (the bound was passed).
    pub fn bound_passed(&self) -> bool {
        self.n_uncounted > 0
    }
}

/// `value`, cut to [`MAX_TOP_VALUE_CHARS`] characters.
fn cut(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_TOP_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", value.get(..end).unwrap_or_default()).into(),
        None => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::batch::top::{MAX_TOP_VALUES, TopCounts};

    #[test]
    fn counts_are_exact_and_the_bound_is_said() {
        let mut top = TopCounts::new("ip");
        for i in 0..120 {
            top.add("203.0.113.9");
            if i < 45 {
                top.add("198.51.100.7");
            }
        }
        top.add("");
        assert_eq!(
            top.most_frequent(5),
            [("203.0.113.9", 120), ("198.51.100.7", 45)]
        );
        assert!(!top.bound_passed());
        for i in 0..MAX_TOP_VALUES + 5 {
            top.add(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        assert_eq!(top.n_distinct(), MAX_TOP_VALUES);
        assert_eq!(top.n_uncounted, 7, "2 known + 9,998 new fit; 7 did not");
        top.add("203.0.113.9");
        assert_eq!(
            top.most_frequent(1),
            [("203.0.113.9", 121)],
            "known values still count"
        );
    }

    #[test]
    fn absorbing_adds_counts_and_keeps_the_most_frequent() {
        let mut newer = TopCounts::new("user");
        newer.add("root");
        let mut older = TopCounts::new("user");
        older.add("root");
        older.add("admin");
        newer.absorb(older);
        assert_eq!(newer.most_frequent(3), [("root", 2), ("admin", 1)]);
        let mut full = TopCounts::new("user");
        for i in 0..MAX_TOP_VALUES {
            full.add(&format!("u{i}"));
        }
        let mut other = TopCounts::new("user");
        other.add("hot");
        other.add("hot");
        other.add("cold");
        full.absorb(other);
        assert_eq!(full.n_distinct(), MAX_TOP_VALUES);
        assert_eq!(full.most_frequent(1), [("hot", 2)]);
        assert_eq!(full.n_uncounted, 2, "two values of count 1 left out");
        let long = "x".repeat(300);
        let mut cut = TopCounts::new("x");
        cut.add(&long);
        assert_eq!(cut.most_frequent(1)[0].0.chars().count(), 201);
    }
}
