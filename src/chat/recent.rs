//! `RecentIds`: the `msgId`s answered lately, so that a message DingTalk delivers twice (an HTTP
//! callback it redelivers after a slow answer, a Stream message whose ack was lost) is carried
//! out once: a second `mute 1h` must not make a second silence. Pure: takes `now`.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

/// How long an id is remembered: DingTalk redelivers within seconds to minutes.
pub const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// At most this many ids are remembered (the oldest are forgotten first).
pub const CAPACITY: usize = 4096;

/// The ids seen within [`REMEMBER`], oldest first.
#[derive(Debug, Default)]
pub struct RecentIds {
    order: VecDeque<(SystemTime, String)>,
    ids: HashSet<String>,
}

impl RecentIds {
    /// True the first time `id` is seen (within [`REMEMBER`] and [`CAPACITY`]); records it.
    /// An empty id is never a repeat: without an id nothing can be told apart.
    pub fn first_time(&mut self, id: &str, now: SystemTime) -> bool {
        while let Some((at, old)) = self.order.front() {
            let expired = now.duration_since(*at).is_ok_and(|age| age > REMEMBER);
            if !expired && self.order.len() < CAPACITY {
                break;
            }
            self.ids.remove(old);
            self.order.pop_front();
        }
        if id.is_empty() {
            return true;
        }
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_owned());
        self.order.push_back((now, id.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::chat::recent::{CAPACITY, REMEMBER, RecentIds};

    #[test]
    fn a_repeat_is_caught_until_it_is_forgotten() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut recent = RecentIds::default();
        assert!(recent.first_time("msgA", t0));
        assert!(!recent.first_time("msgA", t0 + Duration::from_secs(3)));
        assert!(recent.first_time("msgB", t0 + Duration::from_secs(3)));
        assert!(recent.first_time("", t0));
        assert!(recent.first_time("", t0));
        // Forgotten after REMEMBER.
        assert!(recent.first_time("msgA", t0 + REMEMBER + Duration::from_secs(1)));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut recent = RecentIds::default();
        for i in 0..CAPACITY + 10 {
            assert!(recent.first_time(&format!("m{i}"), t0));
        }
        assert!(recent.order.len() <= CAPACITY);
        assert_eq!(recent.ids.len(), recent.order.len());
        // The oldest were forgotten, the newest are still caught.
        assert!(recent.first_time("m0", t0));
        assert!(!recent.first_time(&format!("m{}", CAPACITY + 9), t0));
    }
}
