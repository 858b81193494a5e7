//! `dingtail tail` (filled in by its issue).

use std::process::ExitCode;

/// Arguments of `dingtail tail`.
#[derive(Debug, clap::Args)]
pub struct TailArgs {}

/// Runs `dingtail tail`.
pub fn run(_args: TailArgs) -> ExitCode {
    ExitCode::from(2)
}
