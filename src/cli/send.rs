//! `dingtail send` (filled in by its issue).

use std::process::ExitCode;

/// Arguments of `dingtail send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {}

/// Runs `dingtail send`.
pub fn run(_args: SendArgs) -> ExitCode {
    ExitCode::from(2)
}
