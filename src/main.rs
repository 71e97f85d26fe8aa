//! The `fedgate` binary: see `fedgate --help`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a verification makes a few hundred
/// small allocations (the parsed tree, the Identity's strings), and mimalloc
/// takes ~3% off it (docs/performance.md). The library sets no allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    fedgate::cli::run(fedgate::cli::Cli::parse())
}

/// `fedgate metadata show FILE | head -3`: when the reader goes away, stop
/// quietly with 141 (what a shell reports for SIGPIPE), as other command-line
/// tools do, instead of "failed printing to stdout: Broken pipe" and a panic
/// message. Rust ignores SIGPIPE (the servers need that: a peer closing a
/// socket must not kill fedgate), so `println!` panics instead; this hook
/// turns only that panic into the quiet exit and leaves every other panic
/// to the default hook.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
