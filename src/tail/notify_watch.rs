//! `NotifyWatch`: the backend of [`crate::tail::watch::Watch`] on systems other than Linux, the
//! `notify` crate's recommended watcher. It reads events on a thread of its own and records them
//! in the [`Wake`] from there, waking the tailer; on Linux `tail::inotify` reads inotify on the
//! tailing thread itself instead (issue 18: one thread and one wake-up fewer per write).

use std::io;
use std::path::Path;
use std::sync::Arc;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::tail::watch::{AddError, Wake};

/// The `notify` crate's watcher, waking `Wake` from its own thread.
pub(crate) struct NotifyWatch {
    watcher: RecommendedWatcher,
}

impl NotifyWatch {
    /// A watcher that wakes `wake`.
    pub(crate) fn new(wake: Arc<Wake>) -> io::Result<NotifyWatch> {
        let handler = move |event: notify::Result<notify::Event>| match event {
            Ok(event) => match event.kind {
                EventKind::Access(_) => {}
                _ if event.need_rescan() => wake.rescan(),
                EventKind::Modify(ModifyKind::Data(_)) => wake.touch(&event.paths),
                _ => wake.rescan(),
            },
            Err(_) => wake.rescan(),
        };
        let watcher = notify::recommended_watcher(handler).map_err(io::Error::other)?;
        Ok(NotifyWatch { watcher })
    }

    /// Watches `dir` (not its subdirectories).
    pub(crate) fn add(&mut self, dir: &Path) -> Result<(), AddError> {
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Ok(()),
            Err(err) if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) => {
                Err(AddError::OutOfWatches)
            }
            Err(err) => Err(AddError::Other(err.to_string())),
        }
    }

    /// Stops watching `dir` (nothing happens if it is not watched or already gone).
    pub(crate) fn remove(&mut self, dir: &Path) {
        // The watch may already be gone with its directory.
        let _ignored = self.watcher.unwatch(dir);
    }

    /// Never resolves: the watcher's thread wakes the tailer through the `Wake`.
    pub(crate) async fn events(&mut self) -> io::Result<()> {
        std::future::pending().await
    }
}
