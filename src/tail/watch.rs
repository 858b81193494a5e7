//! `Watch`: turns file-system events into wake-ups for the tailer, one inotify watch per
//! directory (never per file), so 10,000 files in one directory cost one watch.
//!
//! Events are hints, not data: the tailer re-reads every followed file on each wake-up and
//! rescans the globs when a directory changed, so a lost or merged event costs nothing. Events
//! are recorded in the [`Wake`]: a flag for a rescan, and the paths written to, kept for the
//! round (bounded): a parked file (closed to save descriptors) is looked at only when its path
//! was. An overflowed queue or a watcher error asks for a rescan. Opens, reads and closes are
//! ignored: the tailer's own would otherwise wake it.
//!
//! On Linux the inotify descriptor is read on the tailing thread's own runtime
//! (`tail::inotify`, through [`Watch::events`], which `Tailer::next_batch` waits on);
//! elsewhere the `notify` crate's thread records events and wakes the tailer through the
//! `Wake`'s `tokio::sync::Notify` (at most one permit, so a burst of events is one wake-up).
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

#[cfg(target_os = "linux")]
use crate::tail::inotify::DirInotify as Backend;
#[cfg(not(target_os = "linux"))]
use crate::tail::notify_watch::NotifyWatch as Backend;

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
        self.note_rescan();
        self.notify.notify_one();
    }

    /// Asks for a rescan at the next round, without waking the tailer (the caller is it).
    pub(crate) fn note_rescan(&self) {
        self.rescan.store(true, Ordering::Release);
    }

    /// Wakes the tailer to read its files.
    pub fn read(&self) {
        self.notify.notify_one();
    }

    /// Wakes the tailer to read its files; `paths` were written to.
    pub fn touch(&self, paths: &[PathBuf]) {
        self.note_touched(paths.iter().cloned());
        self.notify.notify_one();
    }

    /// Records that `paths` were written to, without waking the tailer (the caller is it).
    pub(crate) fn note_touched(&self, paths: impl IntoIterator<Item = PathBuf>) {
        if !self.track.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut touched) = self.touched.lock() {
            if let Touched::Paths(set) = &mut *touched {
                set.extend(paths);
                if set.len() > MAX_TOUCHED {
                    *touched = Touched::All;
                }
            }
        }
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

/// Why a directory could not be watched.
#[derive(Debug)]
pub(crate) enum AddError {
    /// The system's limit of watches is reached (`fs.inotify.max_user_watches`).
    OutOfWatches,
    /// Gone, unreadable or another error: the next rescan tries again.
    Other(String),
}

/// The directory watches of one tailer, or the polling fallback.
pub struct Watch {
    watcher: Option<Backend>,
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
    /// Starts an inotify watcher that records its events in `wake`; falls back to polling (and
    /// says so) if it cannot.
    pub fn new(wake: Arc<Wake>) -> Watch {
        let watcher = match Backend::new(wake) {
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

    /// Resolves once events were read and recorded in the `Wake` (on Linux; elsewhere the
    /// watcher's own thread wakes the tailer, and this never resolves, nor when polling). If
    /// the instance fails, the watch falls back to polling (said once) and this resolves, so
    /// that the caller starts polling. Cancel-safe.
    pub async fn events(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return std::future::pending().await;
        };
        if let Err(err) = watcher.events().await {
            tracing::warn!(error = %err, "cannot read inotify events; falling back to polling");
            self.watcher = None;
            self.dirs.clear();
        }
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
            watcher.remove(&dir);
            self.dirs.remove(&dir);
        }
        for dir in dirs {
            if self.dirs.contains_key(dir) {
                continue;
            }
            let Some(id) = dir_id(dir) else {
                continue;
            };
            match watcher.add(dir) {
                Ok(()) => {
                    self.dirs.insert(dir.clone(), id);
                }
                Err(AddError::OutOfWatches) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        "out of inotify watches (fs.inotify.max_user_watches); falling back to polling"
                    );
                    self.watcher = None;
                    self.dirs.clear();
                    return;
                }
                Err(AddError::Other(err)) => {
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

/// The tests read events through [`Watch::events`], the Linux backend's way.
#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use std::collections::BTreeSet;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::tail::watch::{Wake, Watch};

    async fn events_within(watch: &mut Watch, wait: Duration) -> bool {
        tokio::time::timeout(wait, watch.events()).await.is_ok()
    }

    #[tokio::test]
    async fn a_directory_watch_reports_new_files_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let wake = Arc::new(Wake::default());
        wake.track_touched(true);
        let mut watch = Watch::new(Arc::clone(&wake));
        assert!(!watch.is_polling(), "inotify is available here");
        watch.set_dirs(&BTreeSet::from([dir.path().to_path_buf()]));

        let path = dir.path().join("a.log");
        fs::write(&path, "x\n").unwrap();
        assert!(events_within(&mut watch, Duration::from_secs(5)).await);
        assert!(wake.take_rescan(), "a new file asks for a rescan");

        // Read the creation's remaining events, then clear them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while events_within(&mut watch, Duration::from_millis(50)).await {}
        wake.take_rescan();
        wake.take_touched();

        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        assert!(
            !events_within(&mut watch, Duration::from_millis(100)).await,
            "opening a file is not an event"
        );
        file.write_all(b"more\n").unwrap();
        assert!(
            events_within(&mut watch, Duration::from_secs(5)).await,
            "an append is"
        );
        assert!(!wake.take_rescan(), "an append needs no rescan");
        assert!(wake.take_touched().contains(&path), "and names its path");

        // Dropping the directory from the set removes its watch.
        watch.set_dirs(&BTreeSet::new());
        assert!(watch.dirs.is_empty());
    }

    /// A directory watched, with one file in it, open for writing; paths written to are kept.
    fn watched_file() -> (tempfile::TempDir, PathBuf, fs::File, Arc<Wake>, Watch) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let file = fs::File::create(&path).unwrap();
        let wake = Arc::new(Wake::default());
        wake.track_touched(true);
        let mut watch = Watch::new(Arc::clone(&wake));
        watch.set_dirs(&BTreeSet::from([dir.path().to_path_buf()]));
        (dir, path, file, wake, watch)
    }

    #[tokio::test]
    async fn writes_not_yet_read_are_read_together() {
        let (_dir, path, mut file, wake, mut watch) = watched_file();

        // While nobody reads the watch (the tailer busy or holding its next round), writes wait
        // in the kernel's queue, and one read hands them all over.
        for _ in 0..10 {
            file.write_all(b"line\n").unwrap();
        }
        assert!(events_within(&mut watch, Duration::from_secs(5)).await);
        assert!(wake.take_touched().contains(&path));
        assert!(
            !events_within(&mut watch, Duration::from_millis(100)).await,
            "the ten writes were one read"
        );
    }

    #[tokio::test]
    async fn an_event_while_nobody_waits_is_read_at_the_next_wait() {
        let (_dir, path, mut file, wake, mut watch) = watched_file();
        assert!(!events_within(&mut watch, Duration::from_millis(50)).await);

        // Registered with the reactor, but nobody waiting (the tailer is reading, or its thread
        // sleeps through the gap of `daemon::pace`): nothing is lost.
        file.write_all(b"line\n").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(events_within(&mut watch, Duration::from_secs(5)).await);
        assert!(wake.take_touched().contains(&path));
    }
}
