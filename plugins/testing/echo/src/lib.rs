//! twinwire-plugin-echo: a test adapter plugin. Every send comes back as an inbound message; the
//! payload can ask it to misbehave (see [`Echo`]). Built as a cdylib for the plugin tests and the
//! bench, and as an rlib for the bench's statically linked baseline.

mod echo;

pub use echo::Echo;

twinwire_plugin::export_adapter!(Echo);
