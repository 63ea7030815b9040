//! twinwire-plugin: the adapter plugin ABI (a versioned `extern "C"` entry point) and the safe async
//! trait adapter authors implement. Filled by the connections issue; see ../shared/PLUGIN-ABI-FINDINGS.md.
