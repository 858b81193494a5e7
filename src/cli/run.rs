//! `dingtail run` (filled in by its issue).

use std::process::ExitCode;

/// Arguments of `dingtail run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `dingtail run`.
pub fn run(_args: RunArgs) -> ExitCode {
    ExitCode::from(2)
}
