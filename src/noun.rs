//! English plurals for the numbers dingtail prints: "1 problem", "2 problems", "0 matches". One
//! place, so that no message says "1 problem(s)" or "scanned 1 lines" again (issue 12).
//!
//! Only the regular forms are made (`-s`, `-es` after a sibilant, `-ies` after a consonant and
//! `y`); the nouns dingtail counts are all regular.

use std::borrow::Cow;

/// `n` followed by `noun`, in the singular when `n` is 1 and in the plural otherwise.
pub fn count(n: impl TryInto<u64>, noun: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural(noun))
    }
}

/// The plural of a regular English noun (the last word of `noun`).
pub fn plural(noun: &str) -> Cow<'_, str> {
    let sibilant = ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| noun.ends_with(end));
    if sibilant {
        return Cow::Owned(format!("{noun}es"));
    }
    let mut chars = noun.chars().rev();
    if let (Some('y'), Some(before)) = (chars.next(), chars.next()) {
        if !"aeiou".contains(before) {
            let stem = noun.strip_suffix('y').unwrap_or(noun);
            return Cow::Owned(format!("{stem}ies"));
        }
    }
    Cow::Owned(format!("{noun}s"))
}

#[cfg(test)]
mod tests {
    use crate::noun::count;

    #[test]
    fn singular_for_one_and_plural_otherwise() {
        assert_eq!(count(1usize, "problem"), "1 problem");
        assert_eq!(count(0usize, "problem"), "0 problems");
        assert_eq!(count(2u64, "line"), "2 lines");
        assert_eq!(count(3u32, "match"), "3 matches");
        assert_eq!(count(2usize, "pending event"), "2 pending events");
        assert_eq!(count(2usize, "entry"), "2 entries");
        assert_eq!(count(2usize, "day"), "2 days");
        assert_eq!(count(1usize, "rule file"), "1 rule file");
    }
}
