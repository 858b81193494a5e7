//! `DirInotify`: the Linux backend of [`crate::tail::watch::Watch`], an inotify instance read on
//! the tailing thread's own runtime (issue 18). The `notify` crate reads inotify on a thread of
//! its own and wakes the tailer from there: for a file written 100 times a second that was a
//! wake-up of notify's thread, then one of the tailing thread (an `eventfd` write) for every
//! write, and notify's thread drained the kernel's queue at once, so no two writes ever merged.
//! Here the descriptor is registered with the tailing thread's reactor (the crate's
//! [`EventStream`], a tokio `AsyncFd`) at the tailer's first wait and stays so, and it is read
//! only when the tailer looks: while the tailer reads, or its thread sleeps through the gap
//! before its next round (see `daemon::pace`), nobody waits on the reactor, so the kernel keeps
//! the events and merges repeated writes to one file into one event without waking anyone.
//! (Round 2 took the descriptor out of the reactor after each round instead, and paced with a
//! tokio timer: two `epoll_ctl` calls, a new registration and a timer per round; issue 18,
//! round 4.)
//!
//! The `notify` crate stays the backend on other systems (`tail::notify_watch`) and watches the
//! config (`daemon::config_watch`), where one wake-up per change costs nothing.
//!
//! The events are the same as before: a write (`IN_MODIFY`) marks its path as touched, a lost
//! queue (`IN_Q_OVERFLOW`), a watch the kernel removed (`IN_IGNORED`) and every other change
//! in a watched directory (a file created, deleted, moved, its attributes changed) ask for a
//! rescan. Opens, reads and closes are not asked for: the tailer's own would wake it.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{FutureExt as _, StreamExt as _};
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};

use crate::tail::watch::{AddError, Wake};

/// What each watched directory reports.
fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// Room for about a hundred events per `read` (an event is 16 bytes and its name); more are
/// read by the next `read`.
const BUFFER: usize = 4096;

/// The inotify instance, registered with the reactor of the runtime that first waits on it.
enum Fd {
    /// Not waited on yet (made outside the tailing thread's runtime).
    Idle(Option<Inotify>),
    /// Registered with the tailing thread's reactor.
    Registered(EventStream<Vec<u8>>),
}

/// One inotify instance, one watch per directory.
pub(crate) struct DirInotify {
    fd: Fd,
    /// Adds and removes watches whether or not the descriptor is registered yet.
    watches: Watches,
    /// The directories each watch stands for (two paths of one directory share a watch).
    dirs: HashMap<WatchDescriptor, BTreeSet<PathBuf>>,
    by_dir: HashMap<PathBuf, WatchDescriptor>,
    wake: Arc<Wake>,
}

impl DirInotify {
    /// A new inotify instance that records its events in `wake`.
    pub(crate) fn new(wake: Arc<Wake>) -> io::Result<DirInotify> {
        let inotify = Inotify::init()?;
        Ok(DirInotify {
            watches: inotify.watches(),
            fd: Fd::Idle(Some(inotify)),
            dirs: HashMap::new(),
            by_dir: HashMap::new(),
            wake,
        })
    }

    /// Watches `dir` (not its subdirectories).
    pub(crate) fn add(&mut self, dir: &Path) -> Result<(), AddError> {
        match self.watches.add(dir, mask()) {
            Ok(wd) => {
                self.dirs
                    .entry(wd.clone())
                    .or_default()
                    .insert(dir.to_path_buf());
                self.by_dir.insert(dir.to_path_buf(), wd);
                Ok(())
            }
            // ENOSPC: fs.inotify.max_user_watches reached.
            Err(err) if err.kind() == io::ErrorKind::StorageFull => Err(AddError::OutOfWatches),
            Err(err) => Err(AddError::Other(err.to_string())),
        }
    }

    /// Stops watching `dir` (nothing happens if it is not watched or already gone).
    pub(crate) fn remove(&mut self, dir: &Path) {
        let Some(wd) = self.by_dir.remove(dir) else {
            return;
        };
        let Some(paths) = self.dirs.get_mut(&wd) else {
            return;
        };
        paths.remove(dir);
        if paths.is_empty() {
            self.dirs.remove(&wd);
            // The watch may be gone with its directory already.
            let _gone = self.watches.remove(wd);
        }
    }

    /// Waits for events and records them in the wake (touched paths, rescans), with every
    /// event already queued. Cancel-safe: the stream keeps what it read, and events are handled
    /// before returning. An error means the instance cannot be used any more (the caller falls
    /// back to polling).
    pub(crate) async fn events(&mut self) -> io::Result<()> {
        let DirInotify {
            fd,
            dirs,
            by_dir,
            wake,
            ..
        } = self;
        let stream = registered(fd)?;
        let Some(first) = stream.next().await else {
            return Err(io::Error::other("the inotify instance was closed"));
        };
        record(&first?, dirs, by_dir, wake);
        // The rest of what is queued, without waiting: one round for all of it.
        while let Some(Some(event)) = stream.next().now_or_never() {
            record(&event?, dirs, by_dir, wake);
        }
        Ok(())
    }
}

/// The event stream, registered with the current runtime's reactor if it is not (the first
/// wait).
fn registered(fd: &mut Fd) -> io::Result<&mut EventStream<Vec<u8>>> {
    if let Fd::Idle(idle) = fd {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("inotify is read only inside a runtime"));
        }
        let Some(inotify) = idle.take() else {
            return Err(io::Error::other("the inotify instance was lost"));
        };
        *fd = Fd::Registered(inotify.into_event_stream(vec![0; BUFFER])?);
    }
    match fd {
        Fd::Registered(stream) => Ok(stream),
        Fd::Idle(_) => Err(io::Error::other("the inotify instance is not registered")),
    }
}

/// What one event means for the tailer.
fn record(
    event: &inotify::Event<OsString>,
    dirs: &mut HashMap<WatchDescriptor, BTreeSet<PathBuf>>,
    by_dir: &mut HashMap<PathBuf, WatchDescriptor>,
    wake: &Wake,
) {
    if event.mask.contains(EventMask::IGNORED) {
        // Removed by the kernel (its directory is gone) or by `remove` (then already forgotten).
        if let Some(paths) = dirs.remove(&event.wd) {
            for path in paths {
                by_dir.remove(&path);
            }
            wake.note_rescan();
        }
        return;
    }
    if event.mask.contains(EventMask::MODIFY) && !event.mask.contains(EventMask::ISDIR) {
        if let (Some(name), Some(paths)) = (&event.name, dirs.get(&event.wd)) {
            wake.note_touched(paths.iter().map(|dir| dir.join(name)));
            return;
        }
    }
    // A lost queue, a file created, deleted, moved or changed otherwise.
    wake.note_rescan();
}
