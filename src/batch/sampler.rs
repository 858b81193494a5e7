//! `Sampler`: which of a rule's matches in a batch become samples, so that the samples show the
//! whole batch, first to last, and not only its first matches (489 PAM failures from dozens of
//! addresses once showed the first two addresses and "and 487 more").
//!
//! Matches are numbered 1, 2, … in the batch. The sampler keeps at most [`MAX_KEPT`] slots,
//! spread evenly: while there is room every `stride`-th match is considered (rendered, kept if it
//! reads differently from the samples kept); when the slots overflow, every second one is dropped
//! (the first match always stays) and the stride doubles. A match that renders like a kept sample
//! takes a slot as a *ghost* (its number, no text), so that a flood of look-alike lines thins and
//! spaces the slots like any other. Renders grow with the logarithm of the count (about five per
//! doubling) and stop at [`MAX_SAMPLE_RENDERS`]: a flood costs a count, not a render each.
//!
//! Pure: no I/O, no clock.

use crate::batch::Sample;

/// Slots (samples and ghosts) a rule keeps per batch; a summary shows a spread subset.
pub const MAX_KEPT: usize = 10;
/// Renders per rule and batch in search of samples, at most: with [`MAX_KEPT`] slots this
/// covers batches of tens of millions of matches.
pub const MAX_SAMPLE_RENDERS: u32 = 128;

/// The sampling state of one rule in one batch. Bookkeeping: batches compare equal whatever it
/// holds.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Matches between two considered ones.
    pub stride: u64,
    /// The number of the next match to consider.
    pub next: u64,
    /// Numbers of matches that were considered but read like a kept sample.
    pub ghosts: Vec<u64>,
    /// Renders spent (not persisted).
    pub n_renders: u32,
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler {
            stride: 1,
            next: 1,
            ghosts: Vec::new(),
            n_renders: 0,
        }
    }
}

/// What to do with match number `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consider {
    /// Not a match the sampler looks at.
    Skip,
    /// Its line is a kept sample's: a ghost, no render needed.
    Ghost,
    /// Render it and offer the result with [`Sampler::offer`].
    Render,
}

impl Sampler {
    /// Whether match `n` (whose raw line is `line`) is considered, given the kept `samples`.
    pub fn consider(&mut self, n: u64, line: &str, samples: &[Sample]) -> Consider {
        if n < self.next {
            return Consider::Skip;
        }
        self.next = n + self.stride;
        if samples.iter().any(|s| s.line == line) {
            return Consider::Ghost;
        }
        if self.n_renders >= MAX_SAMPLE_RENDERS {
            return Consider::Skip;
        }
        self.n_renders += 1;
        Consider::Render
    }

    /// Keeps match `n` as a ghost.
    pub fn ghost(&mut self, n: u64, samples: &mut Vec<Sample>) {
        self.ghosts.push(n);
        self.thin(samples);
    }

    /// Keeps `sample` (match `sample.n`), or a ghost when it reads like a kept one.
    pub fn offer(&mut self, sample: Sample, samples: &mut Vec<Sample>) {
        if samples.iter().any(|s| s.text == sample.text) {
            self.ghost(sample.n, samples);
            return;
        }
        let at = samples.partition_point(|s| s.n < sample.n);
        samples.insert(at, sample);
        self.thin(samples);
    }

    /// While the slots overflow: double the stride and drop every second slot (the first
    /// stays), ghosts first: samples go only when ghosts alone do not make room, so that a batch
    /// of a few distinct lines repeated keeps every one of them. The next match considered is a
    /// stride after the last slot.
    pub fn thin(&mut self, samples: &mut Vec<Sample>) {
        let mut changed = false;
        while samples.len() + self.ghosts.len() > MAX_KEPT {
            changed = true;
            let mut slots: Vec<u64> = samples
                .iter()
                .map(|s| s.n)
                .chain(self.ghosts.iter().copied())
                .collect();
            slots.sort_unstable();
            slots.dedup();
            let keep: Vec<u64> = slots.iter().step_by(2).copied().collect();
            // Two slots with one number (a sample and a ghost after a merge) count once.
            self.ghosts
                .retain(|n| keep.binary_search(n).is_ok() && !samples.iter().any(|s| s.n == *n));
            if samples.len() + self.ghosts.len() > MAX_KEPT {
                samples.retain(|s| keep.binary_search(&s.n).is_ok());
            }
            self.stride = self.stride.saturating_mul(2);
        }
        if changed {
            let last = samples
                .iter()
                .map(|s| s.n)
                .chain(self.ghosts.iter().copied())
                .max()
                .unwrap_or(0);
            self.next = last.saturating_add(self.stride);
        }
    }

    /// Folds the sampler of an older batch of `n_older` matches into this one, whose match
    /// numbers (`samples` and ghosts) come after the older ones.
    pub fn absorb(
        &mut self,
        older: Sampler,
        older_samples: Vec<Sample>,
        n_older: u64,
        samples: &mut Vec<Sample>,
    ) {
        for sample in samples.iter_mut() {
            sample.n += n_older;
        }
        for ghost in &mut self.ghosts {
            *ghost += n_older;
        }
        self.next = self.next.saturating_add(n_older);
        let mut merged = older_samples;
        for sample in std::mem::take(samples) {
            if merged
                .iter()
                .any(|s| s.line == sample.line || s.text == sample.text)
            {
                self.ghosts.push(sample.n);
            } else {
                merged.push(sample);
            }
        }
        merged.sort_by_key(|s| s.n);
        *samples = merged;
        self.ghosts.extend(older.ghosts);
        self.stride = self.stride.max(older.stride);
        self.n_renders = self.n_renders.max(older.n_renders);
        self.thin(samples);
    }

    /// At most `n` of `samples`, spread evenly from the first to the last.
    pub fn spread(samples: &[Sample], n: usize) -> Vec<&Sample> {
        if samples.len() <= n {
            return samples.iter().collect();
        }
        if n <= 1 {
            return samples.iter().take(n).collect();
        }
        let last = samples.len() - 1;
        let mut picked: Vec<&Sample> = Vec::with_capacity(n);
        for i in 0..n {
            let at = (i * last + (n - 1) / 2) / (n - 1);
            if let Some(sample) = samples.get(at) {
                if !picked.iter().any(|p| std::ptr::eq(*p, sample)) {
                    picked.push(sample);
                }
            }
        }
        picked
    }
}
