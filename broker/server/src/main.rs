//! The `twinwire` binary: parses the command line and hands it to the library.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc: with glibc's malloc the engine spent about 39% of its CPU allocating (measured with
/// `cargo bench -p twinwire-core --bench engine`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    twinwire::cli::run(twinwire::cli::Cli::parse())
}
