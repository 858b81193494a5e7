//! `ConfigWatch`: notices when the main config or a rule file changes on disk and asks for a
//! reload, debounced, so that saving a rule file applies it without SIGHUP.
//!
//! It watches the *directories* holding those files (not the files): editors replace files by
//! rename, and Kubernetes swaps a ConfigMap volume through a `..data` symlink, and both are seen
//! only as directory events. Where inotify is unavailable it polls. A change the watcher cannot
//! attribute (overflow, rescan) also triggers a reload: the loader decides what changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watches alive; drop it to stop watching.
pub struct ConfigWatch {
    _watcher: Box<dyn Watcher + Send>,
}

/// The directories to watch for a config at `config` with rule globs `rule_globs`: the config's
/// folder and, for each glob, its longest folder prefix without wildcards.
pub fn watched_dirs(config: &Path, rule_globs: &[String]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    if let Some(parent) = config.parent() {
        dirs.insert(parent.to_path_buf());
    }
    for glob in rule_globs {
        let mut dir = PathBuf::new();
        for component in Path::new(glob).components() {
            let text = component.as_os_str().to_string_lossy();
            if text.contains(['*', '?', '[', '{']) {
                break;
            }
            dir.push(component);
        }
        // The last literal component is a file name when the glob has no wildcard.
        if dir.as_os_str() == glob.as_str() {
            dir.pop();
        }
        if !dir.as_os_str().is_empty() {
            dirs.insert(dir);
        }
    }
    dirs
}

impl ConfigWatch {
    /// Watches `dirs`; after a change, waits `debounce` of quiet and sends one `()` on the
    /// returned channel.
    ///
    /// # Errors
    /// Neither inotify nor the polling watcher could be set up.
    pub fn start(
        dirs: &BTreeSet<PathBuf>,
        debounce: Duration,
        poll_interval: Duration,
    ) -> notify::Result<(ConfigWatch, mpsc::Receiver<()>)> {
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
        let handler = move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                Ok(event) => !matches!(event.kind, EventKind::Access(_)),
                Err(_) => true,
            };
            if relevant {
                // The receiver is gone only when the daemon is stopping.
                let _sent = raw_tx.send(());
            }
        };
        let mut watcher: Box<dyn Watcher + Send> =
            match notify::recommended_watcher(handler.clone()) {
                Ok(watcher) => Box::new(watcher),
                Err(err) => {
                    tracing::warn!(
                        "config files: inotify unavailable ({err}); polling every {poll_interval:?}"
                    );
                    Box::new(notify::PollWatcher::new(
                        handler.clone(),
                        notify::Config::default().with_poll_interval(poll_interval),
                    )?)
                }
            };
        for dir in dirs {
            if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(
                    "cannot watch {} for config changes: {err}; SIGHUP still reloads",
                    dir.display()
                );
            }
        }
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while raw_rx.recv().await.is_some() {
                // Debounce: wait until `debounce` passes without another event.
                loop {
                    match tokio::time::timeout(debounce, raw_rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if tx.try_send(()).is_err() && tx.is_closed() {
                    return;
                }
            }
        });
        Ok((ConfigWatch { _watcher: watcher }, rx))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::daemon::config_watch::{ConfigWatch, watched_dirs};

    #[test]
    fn watches_the_folders_of_the_config_and_rule_globs() {
        let dirs = watched_dirs(
            Path::new("/etc/dingtail/dingtail.yaml"),
            &[
                "/etc/dingtail/rules.d/*.yaml".into(),
                "/srv/rules/one.yaml".into(),
                "/opt/r/**/x.yaml".into(),
            ],
        );
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        assert_eq!(
            dirs,
            [
                PathBuf::from("/etc/dingtail"),
                PathBuf::from("/etc/dingtail/rules.d"),
                PathBuf::from("/opt/r"),
                PathBuf::from("/srv/rules")
            ]
        );
    }

    #[tokio::test]
    async fn a_burst_of_saves_becomes_one_reload() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().to_path_buf()].into_iter().collect();
        let (_watch, mut rx) = ConfigWatch::start(
            &dirs,
            Duration::from_millis(200),
            Duration::from_millis(100),
        )
        .unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join("rules.yaml"), format!("- {i}\n")).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        // Nothing more after the quiet period.
        assert!(
            tokio::time::timeout(Duration::from_millis(600), rx.recv())
                .await
                .is_err()
        );
    }
}
