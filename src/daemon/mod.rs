//! The daemon shell: signals, systemd notification, reload and the HTTP endpoints (issues 5 and 6).

pub mod config_watch;
pub mod http;
pub mod signals;
pub mod systemd;
