//! `Watch`: turns file-system events into wake-ups for the tailer, one inotify watch per
//! directory (never per file), so 10,000 files in one directory cost one watch.
//!
//! Events are hints, not data: the tailer re-reads every followed file on each wake-up and
//! rescans the globs when a directory changed, so a lost or merged event costs nothing. The
//! callback only sets a flag and wakes the waiting task (`tokio::sync::Notify` keeps at most one
//! permit, so a burst of events is one wake-up). The paths written to are kept for the round
//! (bounded): a parked file (closed to save descriptors) is looked at only when its path was. An overflowed queue (`Flag::Rescan`) or a
//! watcher error asks for a rescan. `Access` events are ignored: the tailer's own opens would
//! otherwise wake it.
//!
//! When inotify is unavailable (no instance left, a file system without it) or runs out of
//! watches, the watch falls back to polling: the tailer then rescans and re-reads every
//! `poll_interval`. The fallback is logged once, at the moment it happens.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// Shared between the watcher's callback thread and the tailer.
#[derive(Debug, Default)]
pub struct Wake {
    notify: tokio::sync::Notify,
    rescan: AtomicBool,
    /// Paths written to since the tailer last asked (parked files are looked at only then).
    touched: Mutex<Touched>,
    /// Whether paths are worth keeping: some file is parked.
    track: AtomicBool,
}

/// The paths written to since the tailer last asked.
#[derive(Debug)]
pub enum Touched {
    /// These paths.
    Paths(HashSet<PathBuf>),
    /// Too many to keep, or not known: any path may have been.
    All,
}

impl Default for Touched {
    fn default() -> Touched {
        Touched::Paths(HashSet::new())
    }
}

impl Touched {
    /// True when `path` may have been written to.
    pub fn contains(&self, path: &std::path::Path) -> bool {
        match self {
            Touched::Paths(paths) => paths.contains(path),
            Touched::All => true,
        }
    }

    /// True when no path was.
    pub fn is_empty(&self) -> bool {
        matches!(self, Touched::Paths(paths) if paths.is_empty())
    }
}

/// At most this many touched paths are kept between two rounds; beyond, any may have been.
const MAX_TOUCHED: usize = 4096;

impl Wake {
    /// Wakes the tailer and asks it to rescan the globs.
    pub fn rescan(&self) {
        self.rescan.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Wakes the tailer to read its files.
    pub fn read(&self) {
        self.notify.notify_one();
    }

    /// Wakes the tailer to read its files; `paths` were written to.
    pub fn touch(&self, paths: &[PathBuf]) {
        if !self.track.load(Ordering::Acquire) {
            self.notify.notify_one();
            return;
        }
        if let Ok(mut touched) = self.touched.lock() {
            if let Touched::Paths(set) = &mut *touched {
                set.extend(paths.iter().cloned());
                if set.len() > MAX_TOUCHED {
                    *touched = Touched::All;
                }
            }
        }
        self.notify.notify_one();
    }

    /// Keeps the paths written to (`true`: some file is parked) or not.
    pub fn track_touched(&self, track: bool) {
        self.track.store(track, Ordering::Release);
    }

    /// The paths written to since the last call.
    pub fn take_touched(&self) -> Touched {
        self.touched
            .lock()
            .map(|mut touched| std::mem::take(&mut *touched))
            .unwrap_or(Touched::All)
    }

    /// True (once) if a rescan was asked for since the last call.
    pub fn take_rescan(&self) -> bool {
        self.rescan.swap(false, Ordering::AcqRel)
    }

    /// Resolves at the next wake-up (or at once if one happened since the last wait).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// The directory watches of one tailer, or the polling fallback.
pub struct Watch {
    watcher: Option<RecommendedWatcher>,
    /// Watched directories and the (device, inode) they had when the watch was added: a
    /// directory deleted and re-created needs a new watch.
    dirs: BTreeMap<PathBuf, (u64, u64)>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("polling", &self.is_polling())
            .field("dirs", &self.dirs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Watch {
    /// Starts an inotify watcher that wakes `wake`; falls back to polling (and says so) if it
    /// cannot.
    pub fn new(wake: Arc<Wake>) -> Watch {
        let handler = move |event: notify::Result<notify::Event>| match event {
            Ok(event) => match event.kind {
                EventKind::Access(_) => {}
                _ if event.need_rescan() => wake.rescan(),
                EventKind::Modify(ModifyKind::Data(_)) => wake.touch(&event.paths),
                _ => wake.rescan(),
            },
            Err(_) => wake.rescan(),
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                tracing::warn!(error = %err, "cannot use inotify; falling back to polling");
                None
            }
        };
        Watch {
            watcher,
            dirs: BTreeMap::new(),
        }
    }

    /// No watcher at all: the polling fallback (tests use it to check that polling alone works).
    #[cfg(test)]
    pub fn polling() -> Watch {
        Watch {
            watcher: None,
            dirs: BTreeMap::new(),
        }
    }

    /// True when events are not available and the tailer must poll.
    pub fn is_polling(&self) -> bool {
        self.watcher.is_none()
    }

    /// Makes the watched set `dirs` (those that exist): adds new ones, drops the others.
    pub fn set_dirs(&mut self, dirs: &BTreeSet<PathBuf>) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let stale: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|(dir, id)| !dirs.contains(*dir) || dir_id(dir) != Some(**id))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in stale {
            // The watch may already be gone with its directory.
            let _ignored = watcher.unwatch(&dir);
            self.dirs.remove(&dir);
        }
        for dir in dirs {
            if self.dirs.contains_key(dir) {
                continue;
            }
            let Some(id) = dir_id(dir) else {
                continue;
            };
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir.clone(), id);
                }
                Err(err) if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        "out of inotify watches (fs.inotify.max_user_watches); falling back to polling"
                    );
                    self.watcher = None;
                    self.dirs.clear();
                    return;
                }
                Err(err) => {
                    // Gone or unreadable: the next rescan tries again.
                    tracing::debug!(dir = %dir.display(), error = %err, "cannot watch directory");
                }
            }
        }
    }
}

fn dir_id(dir: &std::path::Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::tail::watch::{Wake, Watch};

    async fn woken(wake: &Wake) -> bool {
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_directory_watch_wakes_for_new_files_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Arc::new(Wake::default());
        let mut watch = Watch::new(Arc::clone(&wake));
        assert!(!watch.is_polling(), "inotify is available here");
        watch.set_dirs(&BTreeSet::from([dir.path().to_path_buf()]));

        let path = dir.path().join("a.log");
        fs::write(&path, "x\n").unwrap();
        assert!(woken(&wake).await);
        assert!(wake.take_rescan(), "a new file asks for a rescan");

        // Let the creation's remaining events arrive, then clear them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        wake.take_rescan();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        wake.take_rescan();
        // Consume a wake-up left over from the creation, so that the next one is the append's.
        let _leftover = tokio::time::timeout(Duration::from_millis(50), wake.notified()).await;
        file.write_all(b"more\n").unwrap();
        assert!(woken(&wake).await, "an append wakes the tailer");
        assert!(!wake.take_rescan(), "an append needs no rescan");

        // Dropping the directory from the set removes its watch.
        watch.set_dirs(&BTreeSet::new());
        assert!(watch.dirs.is_empty());
    }
}
