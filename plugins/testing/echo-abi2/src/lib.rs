//! The echo test plugin, same source, claiming twinwire plugin ABI v2: hosts must refuse it.

/// The echo adapter, compiled a second time.
#[path = "../../echo/src/echo.rs"]
pub mod echo;

twinwire_plugin::export_adapter!(
    @abi_version_for_tests twinwire_plugin::ffi::ABI_VERSION + 1,
    echo::Echo
);
