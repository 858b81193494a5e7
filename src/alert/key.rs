//! `GroupKey`: the values of a rule's `group_by` names for one match, in `group_by` order — the
//! unit thresholds, repeats, resolution and absence are counted per.
//!
//! Values come from log text, so they are attacker input: each is cut to
//! [`GroupKey::MAX_VALUE_BYTES`] (at a character boundary) so that `max_groups` keys bound the
//! memory whatever the lines hold. A key is shared (`Arc`) between the tracker's table, its timer
//! and eviction indexes and the notices it emits, so that an index entry costs a pointer, not a
//! copy. A rule without `group_by` has one key, [`GroupKey::empty`], which allocates nothing.

use std::fmt;
use std::sync::Arc;

/// The `group_by` values of one match, in order.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey(Option<Arc<[Box<str>]>>);

impl GroupKey {
    /// Longer values are cut here (at a character boundary): keys are bounded whatever a log
    /// line holds.
    pub const MAX_VALUE_BYTES: usize = 256;

    /// The one key of a rule without `group_by`.
    pub fn empty() -> GroupKey {
        GroupKey(None)
    }

    /// A key of `values` (each cut to [`GroupKey::MAX_VALUE_BYTES`]); no values give
    /// [`GroupKey::empty`].
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> GroupKey {
        let values: Vec<Box<str>> = values
            .into_iter()
            .map(|value| Box::from(cut(value.as_ref())))
            .collect();
        if values.is_empty() {
            GroupKey(None)
        } else {
            GroupKey(Some(Arc::from(values)))
        }
    }

    /// The values, in `group_by` order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|value| &**value)
    }

    /// How many values the key has (the length of the rule's `group_by`).
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |values| values.len())
    }

    /// True for the key of a rule without `group_by`.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `names` paired with the values (for messages and silences).
    pub fn labels(&self, names: &[String]) -> Vec<(String, String)> {
        names
            .iter()
            .zip(self.values())
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect()
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

/// `value`, cut to at most [`GroupKey::MAX_VALUE_BYTES`] at a character boundary.
fn cut(value: &str) -> &str {
    if value.len() <= GroupKey::MAX_VALUE_BYTES {
        return value;
    }
    let end = value
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .take_while(|end| *end <= GroupKey::MAX_VALUE_BYTES)
        .last()
        .unwrap_or(0);
    value.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::alert::key::GroupKey;

    #[test]
    fn keys_compare_by_values_and_no_values_is_the_empty_key() {
        assert_eq!(
            GroupKey::new(["a", "b"]),
            GroupKey::new(vec!["a".to_string(), "b".into()])
        );
        assert_ne!(GroupKey::new(["a", "b"]), GroupKey::new(["ab"]));
        assert_ne!(GroupKey::new(["a", ""]), GroupKey::new(["a"]));
        assert_eq!(GroupKey::new(Vec::<String>::new()), GroupKey::empty());
        assert!(GroupKey::empty().is_empty());
        assert_eq!(GroupKey::new(["x", "y"]).len(), 2);
        assert_eq!(
            GroupKey::new(["1.2.3.4"]).labels(&["ip".into()]),
            [("ip".to_string(), "1.2.3.4".to_string())]
        );
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let key = GroupKey::new([long.as_str()]);
        let value = key.values().next().unwrap();
        assert_eq!(value.len(), 256);
        assert!(value.chars().all(|c| c == 'é'));
        let odd = format!("a{}", "é".repeat(200));
        assert_eq!(
            GroupKey::new([odd.as_str()]).values().next().unwrap().len(),
            255
        );
    }
}
