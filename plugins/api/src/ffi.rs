//! The C ABI between the twinwire host and an adapter plugin: the only thing that crosses the
//! boundary. Everything here is `#[repr(C)]`, plain data and `extern "C"` function pointers.
//!
//! # Contract
//!
//! - **Entry.** A plugin library exports one symbol, [`ENTRY_SYMBOL`] (`twinwire_adapter_v1`), an
//!   `extern "C" fn() -> *const TwAdapterV1` returning a pointer to a static that lives as long as
//!   the library. The host reads the frozen [`TwAdapterHeader`] prefix first and refuses a plugin
//!   whose `abi_version` is not [`ABI_VERSION`], whose `struct_size` is smaller than
//!   `size_of::<TwAdapterV1>()`, or whose `flags` lack [`FLAG_PANIC_UNWIND`]. Fields are only ever
//!   appended (gated on `struct_size`); `ABI_VERSION` is bumped for any breaking change.
//! - **Borrowed views.** [`TwBytes`], [`TwHeader`], [`TwMessage`] and [`TwBatchEntry`] are valid
//!   only for the duration of the call that passes them; the receiver copies what it keeps with
//!   its own allocator. Addresses, header names and values and payloads are bytes, not UTF-8.
//! - **Ownership.** Each side frees only what it allocated. [`TwBuf`] is the only buffer that
//!   passes to the other side: allocated by the plugin (error text of `create` and `close`) and
//!   handed back through the plugin's `free_buf`.
//! - **`create`** blocks (it builds the plugin's runtime and runs the async constructor): call it
//!   off async threads (`spawn_blocking`). The plugin copies `*host`; `host.ctx` must stay valid
//!   until `close` has returned (forever if `close` reports [`TW_ERR_THREADS_LEAKED`]).
//! - **`send` / `send_batch`** never block. [`TW_OK`] means accepted: exactly one
//!   `on_send_result(token)` follows, unless the instance is closed first; with [`TW_OK`] its
//!   detail is the transport's receipt (a JSON object for the target's acknowledgement, or
//!   empty). Any other status means
//!   refused now, and no callback follows. Callbacks may arrive re-entrantly *inside* `send`, on
//!   the calling thread (the plugin polls the send once inline), so the host registers the token
//!   before calling and holds no lock that its callbacks take.
//! - **`settle`** never blocks; it tells the plugin the outcome of an inbound message by the
//!   settle token the plugin gave it.
//! - **`close`** blocks and frees the instance. It must not overlap any other call on the same
//!   instance and must not be called from a callback. When it returns [`TW_OK`] no plugin thread
//!   of the instance runs any more and no callback will come; if the plugin cannot prove that, it
//!   returns [`TW_ERR_THREADS_LEAKED`]. Either way the instance pointer is invalid afterwards.
//! - **Host callbacks** may be called from any thread, concurrently, and must not block.
//! - **Unloading.** The host never `dlclose`s a plugin library: thread-local destructors of the
//!   plugin's std and tokio registered on host threads keep it mapped anyway, and a thread that
//!   outlives its code crashes the process.

use std::ffi::c_void;
use std::mem::{size_of, ManuallyDrop};

use crate::Message;

/// The entry symbol every plugin exports, NUL-terminated for `dlsym`.
pub const ENTRY_SYMBOL: &[u8] = b"twinwire_adapter_v1\0";
/// [`ENTRY_SYMBOL`] without the NUL, for messages.
pub const ENTRY_SYMBOL_NAME: &str = "twinwire_adapter_v1";
/// The ABI this crate speaks. Bump on any breaking change to a struct or the contract.
pub const ABI_VERSION: u32 = 1;

/// `flags` bit: the plugin was compiled with `panic = "unwind"`, so its `catch_unwind`s work.
/// The host refuses a plugin without it: with `panic = "abort"` any plugin panic kills the host.
pub const FLAG_PANIC_UNWIND: u32 = 1 << 0;

/// `flags` bit: the adapter settles consumed messages (acknowledges, hands back for
/// redelivery); without it, whatever a source consumes is acknowledged by its broker at once,
/// and `twinwire check` warns of routes that request acknowledgements through it.
pub const FLAG_SETTLES: u32 = 1 << 1;

// Status codes (i32). Positive: a refusal the caller can act on; negative: a failure.
/// Accepted / done.
pub const TW_OK: i32 = 0;
/// The adapter rejected or failed the message for good (send result).
pub const TW_ERR_REJECTED: i32 = 1;
/// The host refuses the inbound message and will not take it later either (e.g. it is closing).
pub const TW_ERR_HOST_REFUSED: i32 = 2;
/// No credit now: try again later (inbound: the host is full; send: the adapter is full).
pub const TW_ERR_BACKPRESSURE: i32 = 3;
/// The send failed but may succeed later (e.g. the connection is down); send result only.
pub const TW_ERR_RETRYABLE: i32 = 4;
/// A panic was caught; the detail carries its message.
pub const TW_ERR_PANIC: i32 = -1;
/// The call broke the contract (null pointer, unknown outcome, ...).
pub const TW_ERR_INVALID: i32 = -2;
/// The instance is closed or closing.
pub const TW_ERR_CLOSED: i32 = -3;
/// `create` failed; the error buffer carries the reason.
pub const TW_ERR_CREATE: i32 = -4;
/// `close` could not prove that every plugin thread ended: the host must keep the library
/// mapped and `ctx` valid for the life of the process.
pub const TW_ERR_THREADS_LEAKED: i32 = -5;
/// `create` was called by a host speaking an ABI version this plugin does not.
pub const TW_ERR_ABI: i32 = -6;

// Settle outcomes (u32), host → plugin.
/// The inbound message was processed: the plugin may acknowledge it to its transport.
pub const TW_SETTLE_DELIVERED: u32 = 0;
/// Processing failed but may succeed later: redeliver (nack with requeue).
pub const TW_SETTLE_RETRYABLE: u32 = 1;
/// Processing failed for good: drop or dead-letter (nack without requeue).
pub const TW_SETTLE_PERMANENT: u32 = 2;

// Connection status codes (u32), plugin → host.
/// The adapter's transport connection is up.
pub const TW_STATUS_CONNECTED: u32 = 1;
/// The connection is down (and may come back).
pub const TW_STATUS_DISCONNECTED: u32 = 2;
/// The adapter failed and will not recover by itself.
pub const TW_STATUS_FAILED: u32 = 3;

// Log levels (u32), plugin → host.
/// Error.
pub const TW_LOG_ERROR: u32 = 1;
/// Warning.
pub const TW_LOG_WARN: u32 = 2;
/// Information.
pub const TW_LOG_INFO: u32 = 3;
/// Debug.
pub const TW_LOG_DEBUG: u32 = 4;
/// Trace.
pub const TW_LOG_TRACE: u32 = 5;

/// A borrowed byte slice. `ptr` may be null (or dangling) iff `len == 0`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwBytes {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl TwBytes {
    /// The empty slice.
    pub const EMPTY: TwBytes = TwBytes {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// A view of `bytes`, valid as long as they are.
    pub const fn new(bytes: &[u8]) -> TwBytes {
        TwBytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes viewed.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (or `len` must be 0) that stay valid and unchanged
    /// for `'a`.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller guarantees `ptr` points to `len` valid bytes for `'a`.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// One header: name and value, both bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwHeader {
    /// Header name.
    pub name: TwBytes,
    /// Header value.
    pub value: TwBytes,
}

impl TwHeader {
    /// A header with empty name and value (to initialise arrays).
    pub const EMPTY: TwHeader = TwHeader {
        name: TwBytes::EMPTY,
        value: TwBytes::EMPTY,
    };
}

/// A borrowed message: address (topic, queue, routing key...), headers and payload.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwMessage {
    /// The transport address.
    pub address: TwBytes,
    /// `header_count` headers; may be null iff `header_count == 0`.
    pub headers: *const TwHeader,
    /// Number of headers.
    pub header_count: usize,
    /// The payload.
    pub payload: TwBytes,
}

/// One message of a batch with its token: a send token (host → plugin, `send_batch`) or a settle
/// token (plugin → host, `on_inbound_batch`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwBatchEntry {
    /// The message.
    pub message: TwMessage,
    /// Its token.
    pub token: u64,
}

/// A buffer allocated by the plugin and owned by whoever holds it until it goes back through the
/// plugin's `free_buf`. Null `ptr` means no buffer.
#[repr(C)]
#[derive(Debug)]
pub struct TwBuf {
    /// First byte, or null.
    pub ptr: *mut u8,
    /// Bytes used.
    pub len: usize,
    /// Bytes allocated.
    pub cap: usize,
}

impl TwBuf {
    /// No buffer.
    pub const fn empty() -> TwBuf {
        TwBuf {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// The host's callbacks, handed to `create`. The plugin copies the struct; `ctx` must stay valid
/// until `close` has returned. Every callback may run on any thread, concurrently with the others,
/// and must not block.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwHostCallbacks {
    /// `size_of::<TwHostCallbacks>()` in the host: callbacks are appended later, gated on it.
    pub struct_size: usize,
    /// Host-owned context passed back to every callback.
    pub ctx: *mut c_void,
    /// An inbound message with the settle token the host passes back to `settle`. Returns
    /// [`TW_OK`] (taken: exactly one `settle` follows, unless the instance closes first),
    /// [`TW_ERR_BACKPRESSURE`] (not taken, no credit now) or [`TW_ERR_HOST_REFUSED`] (not taken,
    /// and never will be).
    pub on_inbound:
        unsafe extern "C" fn(ctx: *mut c_void, message: *const TwMessage, settle_token: u64) -> i32,
    /// `count` inbound messages. The host takes a prefix of them, writes its length to
    /// `*out_accepted` and returns [`TW_OK`] if it took all, else the status refusing the first
    /// one it did not take.
    pub on_inbound_batch: unsafe extern "C" fn(
        ctx: *mut c_void,
        entries: *const TwBatchEntry,
        count: usize,
        out_accepted: *mut usize,
    ) -> i32,
    /// The outcome of an accepted send: [`TW_OK`] or a failure status with a detail text.
    pub on_send_result:
        unsafe extern "C" fn(ctx: *mut c_void, token: u64, status: i32, detail: TwBytes),
    /// The adapter's connection status ([`TW_STATUS_CONNECTED`], ...) with a detail text.
    pub on_status: unsafe extern "C" fn(ctx: *mut c_void, status: u32, detail: TwBytes),
    /// A log line ([`TW_LOG_ERROR`], ...). Plugin panics arrive here too.
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: u32, text: TwBytes),
    /// Appended (a host whose `struct_size` ends before it has none): a gauge of the adapter's,
    /// e.g. a Kafka partition's consumer lag, named `name`, told apart by `labels` (name/value
    /// pairs; keep their values few: never a thing ID).
    pub on_metric: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            name: TwBytes,
            labels: *const TwHeader,
            label_count: usize,
            value: f64,
        ),
    >,
}

/// The size of the host callback table before [`TwHostCallbacks::on_metric`] was appended: the
/// smallest table a plugin accepts.
pub const HOST_CALLBACKS_V1_SIZE: usize = std::mem::offset_of!(TwHostCallbacks, on_metric);

/// The frozen prefix of every version of the plugin vtable: read it, and nothing else, first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TwAdapterHeader {
    /// The ABI the plugin was built for.
    pub abi_version: u32,
    /// `size_of` the vtable struct in the plugin.
    pub struct_size: u32,
}

/// `create(host_abi_version, config, host, out_instance, out_error)`: builds an instance.
/// Returns [`TW_OK`] and writes `*out_instance`, or a failure status and (perhaps) an error text
/// in `*out_error` for the host to return through `free_buf`.
pub type TwCreateFn = unsafe extern "C" fn(
    host_abi_version: u32,
    config: TwBytes,
    host: *const TwHostCallbacks,
    out_instance: *mut *mut c_void,
    out_error: *mut TwBuf,
) -> i32;
/// `send(instance, message, token)`: non-blocking; see the module contract.
pub type TwSendFn =
    unsafe extern "C" fn(instance: *mut c_void, message: *const TwMessage, token: u64) -> i32;
/// `send_batch(instance, entries, count, out_status)`: `send` for each entry; `out_status[i]`
/// gets what `send` would have returned for entry `i`. A non-[`TW_OK`] return means the call
/// failed as a whole: nothing was accepted and no callback follows.
pub type TwSendBatchFn = unsafe extern "C" fn(
    instance: *mut c_void,
    entries: *const TwBatchEntry,
    count: usize,
    out_status: *mut i32,
) -> i32;
/// `settle(instance, settle_token, outcome)`: non-blocking.
pub type TwSettleFn =
    unsafe extern "C" fn(instance: *mut c_void, settle_token: u64, outcome: u32) -> i32;
/// `close(instance, out_error)`: blocking; frees the instance; see the module contract.
pub type TwCloseFn = unsafe extern "C" fn(instance: *mut c_void, out_error: *mut TwBuf) -> i32;
/// `free_buf(buf)`: frees a buffer the plugin allocated.
pub type TwFreeBufFn = unsafe extern "C" fn(buf: TwBuf);
/// The type of [`ENTRY_SYMBOL`].
pub type TwEntryFn = unsafe extern "C" fn() -> *const TwAdapterV1;

/// The plugin's vtable, version 1. Begins with the fields of [`TwAdapterHeader`].
#[repr(C)]
#[derive(Debug)]
pub struct TwAdapterV1 {
    /// [`ABI_VERSION`] of the plugin.
    pub abi_version: u32,
    /// `size_of::<TwAdapterV1>()` in the plugin: later versions append fields.
    pub struct_size: u32,
    /// [`FLAG_PANIC_UNWIND`], ...
    pub flags: u32,
    /// The plugin's name (static, valid while the library is loaded).
    pub name: TwBytes,
    /// The connection types the plugin serves, e.g. `mqtt`, `amqp-091` (static).
    pub connection_types: *const TwBytes,
    /// Number of `connection_types`.
    pub connection_type_count: usize,
    /// See [`TwCreateFn`].
    pub create: TwCreateFn,
    /// See [`TwSendFn`].
    pub send: TwSendFn,
    /// See [`TwSendBatchFn`].
    pub send_batch: TwSendBatchFn,
    /// See [`TwSettleFn`].
    pub settle: TwSettleFn,
    /// See [`TwCloseFn`].
    pub close: TwCloseFn,
    /// See [`TwFreeBufFn`].
    pub free_buf: TwFreeBufFn,
}

/// `size_of::<TwAdapterV1>()` as the header states it.
pub const ADAPTER_V1_SIZE: u32 = size_of::<TwAdapterV1>() as u32;

// The header is a prefix of the vtable.
const _: () = {
    assert!(
        std::mem::offset_of!(TwAdapterV1, abi_version)
            == std::mem::offset_of!(TwAdapterHeader, abi_version)
    );
    assert!(
        std::mem::offset_of!(TwAdapterV1, struct_size)
            == std::mem::offset_of!(TwAdapterHeader, struct_size)
    );
};

// ---- conversions shared by the glue and the host (crate-internal) ----

/// Headers of a view are kept on the stack up to this many.
const INLINE_HEADERS: usize = 8;

/// Calls `f` with a borrowed view of `message` (header array on the stack for up to 8 headers).
pub(crate) fn with_message_view<R>(message: &Message, f: impl FnOnce(&TwMessage) -> R) -> R {
    let count = message.header_count();
    let view = |headers: *const TwHeader| TwMessage {
        address: TwBytes::new(message.address()),
        headers,
        header_count: count,
        payload: TwBytes::new(message.payload()),
    };
    if count <= INLINE_HEADERS {
        let mut headers = [TwHeader::EMPTY; INLINE_HEADERS];
        for (slot, (name, value)) in headers.iter_mut().zip(message.headers()) {
            *slot = TwHeader {
                name: TwBytes::new(name),
                value: TwBytes::new(value),
            };
        }
        f(&view(headers.as_ptr()))
    } else {
        let headers: Vec<TwHeader> = header_views(message).collect();
        f(&view(headers.as_ptr()))
    }
}

fn header_views(message: &Message) -> impl Iterator<Item = TwHeader> + '_ {
    message.headers().map(|(name, value)| TwHeader {
        name: TwBytes::new(name),
        value: TwBytes::new(value),
    })
}

/// Calls `f` with borrowed batch entries for `messages` (one header array for the whole batch).
pub(crate) fn with_batch_view<'m, R>(
    messages: impl Iterator<Item = (&'m Message, u64)> + Clone,
    f: impl FnOnce(&[TwBatchEntry]) -> R,
) -> R {
    // Every header first, so that the pointers taken below stay valid.
    let headers: Vec<TwHeader> = messages
        .clone()
        .flat_map(|(m, _)| header_views(m))
        .collect();
    let mut at = 0usize;
    let entries: Vec<TwBatchEntry> = messages
        .map(|(message, token)| {
            let count = message.header_count();
            let entry = TwBatchEntry {
                message: TwMessage {
                    address: TwBytes::new(message.address()),
                    headers: headers[at..at + count].as_ptr(),
                    header_count: count,
                    payload: TwBytes::new(message.payload()),
                },
                token,
            };
            at += count;
            entry
        })
        .collect();
    f(&entries)
}

/// Copies a borrowed message into an owned [`Message`] (one allocation).
///
/// # Safety
/// `view` must follow the contract of [`TwMessage`]: every pointer valid for its length for the
/// duration of the call.
pub(crate) unsafe fn message_from_ffi(view: &TwMessage) -> Message {
    let headers: &[TwHeader] = if view.header_count == 0 || view.headers.is_null() {
        &[]
    } else {
        // SAFETY: the caller guarantees `headers` points to `header_count` valid headers.
        unsafe { std::slice::from_raw_parts(view.headers, view.header_count) }
    };
    // SAFETY: (the `as_slice` calls) the caller guarantees every byte view is valid for the
    // duration of this call, and `Message::from_parts` copies them before returning.
    unsafe {
        Message::from_parts(
            view.address.as_slice(),
            headers
                .iter()
                .map(|h| (h.name.as_slice(), h.value.as_slice())),
            view.payload.as_slice(),
        )
    }
}

/// Hands `text` over as a [`TwBuf`] (to be returned through `free_buf` of the same side).
pub(crate) fn buf_from_string(text: String) -> TwBuf {
    let mut bytes = ManuallyDrop::new(text.into_bytes());
    TwBuf {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        cap: bytes.capacity(),
    }
}

/// Takes back a buffer made by [`buf_from_string`] in this same library and frees it.
///
/// # Safety
/// `buf` must come from [`buf_from_string`] of this copy of the crate (same allocator) and must not
/// be used afterwards.
pub(crate) unsafe fn free_own_buf(buf: TwBuf) {
    if !buf.ptr.is_null() {
        // SAFETY: the caller guarantees `buf` is a `Vec<u8>` of this allocator, handed out by
        // `buf_from_string` with exactly these parts.
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    }
}
