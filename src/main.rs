//! The `fedgate` binary: see `fedgate --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a verification makes a few hundred
/// small allocations (the parsed tree, the Identity's strings), and mimalloc
/// takes ~3% off it (docs/performance.md). The library sets no allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    fedgate::cli::run(fedgate::cli::Cli::parse())
}
