//! Signals as events: SIGHUP asks for a reload, SIGTERM and SIGINT for a graceful shutdown.
//! signal-hook installs the handlers (async-signal-safe, self-pipe); the daemon's loop receives a
//! closed `Signal` enum from a stream, alongside its other events.
//!
//! Installing handlers for SIGTERM and SIGINT also makes the binary safe as PID 1 in a container,
//! where the kernel would otherwise ignore them.

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;

/// What a signal asks of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: load the config again.
    Reload,
    /// SIGTERM or SIGINT: persist, flush what the rate budget allows, exit 0.
    Shutdown,
}

/// The stream of signals the daemon handles.
pub struct SignalStream {
    signals: Signals,
}

impl SignalStream {
    /// Installs the handlers.
    ///
    /// # Errors
    /// The handlers cannot be installed.
    pub fn install() -> std::io::Result<SignalStream> {
        Ok(SignalStream {
            signals: Signals::new([SIGHUP, SIGTERM, SIGINT])?,
        })
    }

    /// The next signal; `None` if the stream ended (it does not, while the handle lives).
    pub async fn next(&mut self) -> Option<Signal> {
        let signal = self.signals.next().await?;
        Some(if signal == SIGHUP {
            Signal::Reload
        } else {
            Signal::Shutdown
        })
    }
}
