//! The `twinwire` binary: parses the command line and hands it to the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    twinwire::cli::run(twinwire::cli::Cli::parse())
}
