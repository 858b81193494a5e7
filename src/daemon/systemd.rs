//! `Notifier`: systemd's `sd_notify` protocol (READY, RELOADING, STOPPING, STATUS, WATCHDOG) over
//! the datagram socket named by `NOTIFY_SOCKET`. Everything is a no-op when the variable is unset,
//! so the same binary runs under systemd, in a container and in a terminal.
//!
//! Send failures are logged once and otherwise ignored: a daemon must not stop working because
//! its supervisor went away.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Talks to systemd, if systemd is listening.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
    failed_once: AtomicBool,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    /// A Linux abstract socket name (without the leading `@`).
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` (and `WATCHDOG_PID`) from the environment.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|socket| {
            let bytes = socket.into_encoded_bytes();
            match bytes.split_first() {
                Some((b'@', name)) => Some(Target::Abstract(name.to_vec())),
                Some((b'/', _)) => Some(Target::Path(PathBuf::from(std::ffi::OsString::from(
                    String::from_utf8_lossy(&bytes).into_owned(),
                )))),
                _ => None,
            }
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(Duration::from_micros);
        Notifier {
            target,
            watchdog,
            failed_once: AtomicBool::new(false),
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when the watchdog is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// Tailing has started.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A reload begins (`MONOTONIC_USEC` as `Type=notify-reload` asks).
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    /// The daemon is shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// A one-line summary shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The work loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        let Some(target) = &self.target else { return };
        let result = UnixDatagram::unbound().and_then(|socket| match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path).map(drop),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &addr).map(drop)
            }
        });
        if let Err(err) = result {
            if !self.failed_once.swap(true, Ordering::Relaxed) {
                tracing::warn!("cannot notify systemd through NOTIFY_SOCKET: {err}");
            }
        }
    }
}

fn one_line(status: &str) -> String {
    status.replace('\n', " ")
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` against.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    use crate::daemon::systemd::{Notifier, Target};

    #[test]
    fn sends_datagrams_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier {
            target: Some(Target::Path(path)),
            watchdog: Some(Duration::from_secs(10)),
            failed_once: Default::default(),
        };
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
        notifier.ready("tailing 3 files\n2 rules");
        notifier.reloading();
        notifier.watchdog();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=tailing 3 files 2 rules");
        let n = socket.recv(&mut buf).unwrap();
        let reloading = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{reloading}"
        );
        assert!(
            reloading
                .trim_start_matches("RELOADING=1\nMONOTONIC_USEC=")
                .parse::<u64>()
                .unwrap()
                > 0
        );
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let notifier = Notifier {
            target: None,
            watchdog: Some(Duration::from_secs(10)),
            failed_once: Default::default(),
        };
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.ready("x");
    }
}
