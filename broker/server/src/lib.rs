//! twinwire, the binary's library: everything `main.rs` calls, kept here so tests call it too.
//!
//! - [`cli`]: the command line.
//! - [`check`]: `twinwire protocol check`.

pub mod check;
pub mod cli;
