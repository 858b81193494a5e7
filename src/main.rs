//! The `dingtail` binary: everything lives in the library; this only hands over to `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    dingtail::cli::main()
}
