//! The `fedgate` binary: see `fedgate --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fedgate::cli::run(fedgate::cli::Cli::parse())
}
