//! twinwire-plugin: the adapter plugin ABI and the safe async traits adapter authors implement.
//!
//! An adapter connects twinwire connections to a transport (MQTT, AMQP, Kafka...). It knows bytes,
//! headers and addresses of its transport, nothing of twins. It can be linked into the broker
//! statically, or built as a `cdylib` plugin that the broker loads at run time through a versioned
//! C ABI ([`ffi`]). Either way the broker drives it as a `dyn` [`Adapter`].
//!
//! # Writing an adapter
//!
//! Implement [`Adapter`] (send, settle, close) and [`Plugin`] (name, connection types, create), in
//! safe async Rust, and export it with [`export_adapter!`]:
//!
//! ```
//! use twinwire_plugin::{async_trait, Adapter, Host, Message, Plugin, Receipt, SendError};
//!
//! struct Loopback { host: Host }
//!
//! #[async_trait]
//! impl Adapter for Loopback {
//!     async fn send(&self, message: Message) -> Result<Receipt, SendError> {
//!         self.host.deliver(message, 0); // straight back in
//!         Ok(Receipt::default())
//!     }
//! }
//!
//! #[async_trait]
//! impl Plugin for Loopback {
//!     const NAME: &'static str = "loopback";
//!     const CONNECTION_TYPES: &'static [&'static str] = &["loopback"];
//!     async fn create(_config: &[u8], host: Host) -> Result<Self, String> {
//!         Ok(Loopback { host })
//!     }
//! }
//!
//! twinwire_plugin::export_adapter!(Loopback);
//! ```
//!
//! A plugin crate is `crate-type = ["cdylib"]` (add `"rlib"` to link it statically too) and must
//! be built with `panic = "unwind"` (the default); the host refuses it otherwise. Each loaded
//! instance runs on its own tokio runtime ([`RuntimeConfig`]); [`tokio`] is re-exported so that a
//! plugin uses the same copy as its glue. A crate that exports an adapter exports the C symbol
//! `twinwire_adapter_v1`: link at most one such crate statically into a binary.
//!
//! # Hosting adapters
//!
//! With the `host` feature, [`host::PluginLibrary`] loads a plugin library (checking its ABI
//! before anything else) and makes [`host::PluginAdapter`] instances; [`host::create_static`]
//! makes a statically linked adapter the same way. Both deliver to a [`HostSink`].

#[allow(unsafe_code)]
pub mod ffi;

#[doc(hidden)]
#[allow(unsafe_code)]
#[path = "glue.rs"]
pub mod __glue;

#[cfg(feature = "host")]
#[allow(unsafe_code)]
pub mod host;

mod adapter;
mod gate;
mod message;
#[cfg(feature = "settings")]
pub mod settings;

pub use adapter::{
    Adapter, BatchDelivery, ConnectionStatus, Delivery, Host, HostSink, Inbound, LogLevel, Outcome,
    Plugin, Receipt, RuntimeConfig, SendError,
};
pub use async_trait::async_trait;
pub use message::{Headers, Message, MessageBuilder};
pub use tokio;

/// Exports `$plugin` (a type implementing [`Plugin`]) as this library's twinwire adapter: defines
/// the static vtable and the `twinwire_adapter_v1` entry symbol, and instantiates the glue (own
/// runtime, inline first poll, panics caught and forwarded to the host's log).
///
/// Use it once, in a `cdylib` crate.
#[macro_export]
macro_rules! export_adapter {
    ($plugin:ty $(,)?) => {
        $crate::export_adapter!(@abi_version_for_tests $crate::ffi::ABI_VERSION, $plugin);
    };
    // Not for plugins: builds a plugin claiming another ABI version, to test that hosts refuse it.
    (@abi_version_for_tests $abi:expr, $plugin:ty $(,)?) => {
        const _: () = {
            const TYPE_COUNT: usize = <$plugin as $crate::Plugin>::CONNECTION_TYPES.len();
            static TYPES: $crate::__glue::ConnectionTypes<TYPE_COUNT> =
                $crate::__glue::ConnectionTypes::new(<$plugin as $crate::Plugin>::CONNECTION_TYPES);
            static VTABLE: $crate::__glue::StaticVTable = $crate::__glue::StaticVTable::new::<
                $plugin,
            >($abi, &TYPES.0, cfg!(panic = "unwind"));

            /// The twinwire adapter plugin entry point.
            #[no_mangle]
            pub extern "C" fn twinwire_adapter_v1() -> *const $crate::ffi::TwAdapterV1 {
                &VTABLE.0
            }
        };
    };
}
