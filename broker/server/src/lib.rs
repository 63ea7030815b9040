//! twinwire, the binary's library: everything `main.rs` calls, kept here so tests call it too.
//!
//! - [`cli`]: the command line.
//! - [`check`]: `twinwire protocol check`.
//! - [`pipe`]: `twinwire pipe`, the twin engine on stdin and stdout.
//! - `input`: cutting files and stdin into messages, for both.

pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod http;
mod input;
pub mod jwt;
pub mod pipe;
pub mod run;
