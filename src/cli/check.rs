//! `dingtail check` (filled in by its issue).

use std::process::ExitCode;

/// Arguments of `dingtail check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

/// Runs `dingtail check`.
pub fn run(_args: CheckArgs) -> ExitCode {
    ExitCode::from(2)
}
