//! Which robots' undelivered events the next commit must write, and how much of them.
//!
//! A robot is dirty when its batches in memory differ from its rows on disk. Most of the time
//! the difference is a few rules' gathering rows (the lines just matched), and the rest of its
//! rows are on disk as they are in memory: the commit then writes those rules' rows only,
//! instead of deleting and re-encoding everything the robot holds (which grew with every match
//! a rate-limited robot gathered, and was a tenth of a busy daemon's time: issue 18). Any other
//! change (a send, an answer, a notice, a failed commit, a replaced database) marks the whole
//! robot, and the commit rewrites all of its rows as before.
//!
//! The invariant a partial write relies on: a robot that is not dirty has on disk, as its
//! gathering rows, exactly its gathering batch. A commit that succeeds establishes it (it wrote
//! every dirty robot's rows); one that fails leaves the marks as they were, so the next commit
//! writes the same rows again.

use std::collections::{BTreeMap, BTreeSet};

/// What a dirty robot's commit writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    /// All of its rows: they may differ in any way.
    All,
    /// The gathering rows of these rules; every other row is on disk as in memory.
    Gathering(BTreeSet<String>),
}

/// The dirty robots.
#[derive(Clone, Debug, Default)]
pub(crate) struct DirtyRobots {
    robots: BTreeMap<String, Rows>,
}

impl DirtyRobots {
    /// `robot`'s rows may differ in any way: the next commit rewrites all of them.
    pub(crate) fn insert(&mut self, robot: String) {
        self.robots.insert(robot, Rows::All);
    }

    /// Only `rule`'s gathering row of `robot` changed (a match added to its gathering batch).
    pub(crate) fn rule_changed(&mut self, robot: &str, rule: &str) {
        match self.robots.get_mut(robot) {
            Some(Rows::All) => {}
            Some(Rows::Gathering(rules)) => {
                if !rules.contains(rule) {
                    rules.insert(rule.to_string());
                }
            }
            None => {
                self.robots.insert(
                    robot.to_string(),
                    Rows::Gathering(BTreeSet::from([rule.to_string()])),
                );
            }
        }
    }

    /// True when nothing needs writing.
    pub(crate) fn is_empty(&self) -> bool {
        self.robots.is_empty()
    }

    /// The dirty robots and what to write of each.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Rows)> {
        self.robots
            .iter()
            .map(|(robot, rows)| (robot.as_str(), rows))
    }

    /// How many robots are dirty.
    pub(crate) fn len(&self) -> usize {
        self.robots.len()
    }

    /// Everything was written.
    pub(crate) fn clear(&mut self) {
        self.robots.clear();
    }
}

impl Extend<String> for DirtyRobots {
    fn extend<T: IntoIterator<Item = String>>(&mut self, robots: T) {
        for robot in robots {
            self.insert(robot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{DirtyRobots, Rows};

    fn rows(dirty: &DirtyRobots) -> Vec<(String, Rows)> {
        dirty
            .iter()
            .map(|(robot, rows)| (robot.to_string(), rows.clone()))
            .collect()
    }

    fn only(rules: &[&str]) -> Rows {
        Rows::Gathering(
            rules
                .iter()
                .map(ToString::to_string)
                .collect::<BTreeSet<_>>(),
        )
    }

    #[test]
    fn matches_mark_their_rules_only() {
        let mut dirty = DirtyRobots::default();
        assert!(dirty.is_empty());
        dirty.rule_changed("ops", "nginx-5xx");
        dirty.rule_changed("ops", "oom");
        dirty.rule_changed("ops", "nginx-5xx");
        dirty.rule_changed("dev", "oom");
        assert_eq!(
            rows(&dirty),
            [
                ("dev".to_string(), only(&["oom"])),
                ("ops".to_string(), only(&["nginx-5xx", "oom"])),
            ]
        );
        assert_eq!(dirty.len(), 2);
    }

    #[test]
    fn any_other_change_rewrites_the_whole_robot_until_a_commit() {
        let mut dirty = DirtyRobots::default();
        dirty.rule_changed("ops", "nginx-5xx");
        dirty.insert("ops".to_string());
        // A match after a whole-robot change does not narrow what must be written.
        dirty.rule_changed("ops", "oom");
        dirty.extend(["dev".to_string()]);
        assert_eq!(
            rows(&dirty),
            [
                ("dev".to_string(), Rows::All),
                ("ops".to_string(), Rows::All)
            ]
        );
        dirty.clear();
        assert!(dirty.is_empty());
        // After the commit, a match marks its rule only again.
        dirty.rule_changed("ops", "oom");
        assert_eq!(rows(&dirty), [("ops".to_string(), only(&["oom"]))]);
    }
}
