//! The host side (feature `host`): load plugin libraries, create and drive their instances.
//!
//! - [`PluginLibrary::load`] checks the plugin's ABI header before anything else and never unloads
//!   the library (it stays mapped for the life of the process; see the [`ffi`] contract).
//! - [`PluginLibrary::create`] runs the plugin's blocking `create` on tokio's blocking pool.
//! - [`PluginAdapter`] sends without blocking (each send registers a token, then calls the
//!   plugin; the result arrives through a callback), settles, and closes (on the blocking pool,
//!   never overlapping a send; afterwards every pending send resolves to [`SendError::Closed`]).
//! - [`create_static`] makes a statically linked adapter; both are driven as `dyn` [`Adapter`].
//!
//! This module needs a tokio runtime on the calling side (`create` and `close` use
//! `spawn_blocking`).

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::future::Future;
use std::mem::size_of;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::ffi::{self, *};
use crate::gate::Gate;
use crate::{
    Adapter, ConnectionStatus, Host, HostSink, Inbound, LogLevel, Message, Outcome, Plugin,
    Receipt, SendError,
};

/// Why a plugin library was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The file could not be loaded as a shared library.
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library has no `twinwire_adapter_v1` symbol: not a twinwire plugin.
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// The entry function returned a null or misaligned pointer.
    BadEntry {
        /// The file.
        path: PathBuf,
    },
    /// The plugin was built for another ABI version.
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's ABI version.
        plugin: u32,
        /// This host's ([`ABI_VERSION`]).
        host: u32,
    },
    /// The plugin's vtable is smaller than this ABI version's.
    StructTooSmall {
        /// The file.
        path: PathBuf,
        /// Its `struct_size`.
        size: u32,
        /// The least this host accepts.
        expected: u32,
    },
    /// The plugin was built with `panic = "abort"`: any panic in it would kill the host.
    NoPanicUnwind {
        /// The file.
        path: PathBuf,
    },
}

impl LoadError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Open { path, .. }
            | LoadError::NotAPlugin { path }
            | LoadError::BadEntry { path }
            | LoadError::AbiMismatch { path, .. }
            | LoadError::StructTooSmall { path, .. }
            | LoadError::NoPanicUnwind { path } => path,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open { path, message } => {
                write!(f, "cannot load plugin {}: {message}", path.display())
            }
            LoadError::NotAPlugin { path } => write!(
                f,
                "{} is not a twinwire plugin: no {ENTRY_SYMBOL_NAME} entry symbol",
                path.display()
            ),
            LoadError::BadEntry { path } => write!(
                f,
                "plugin {}: {ENTRY_SYMBOL_NAME} returned an invalid vtable pointer",
                path.display()
            ),
            LoadError::AbiMismatch { path, plugin, host } => write!(
                f,
                "plugin {} was built for twinwire plugin ABI v{plugin}, but this host speaks ABI \
                 v{host}; refusing to load it (rebuild it against twinwire-plugin with ABI v{host})",
                path.display()
            ),
            LoadError::StructTooSmall { path, size, expected } => write!(
                f,
                "plugin {}: its vtable is {size} bytes, but ABI v{ABI_VERSION} needs at least \
                 {expected}; refusing to load it (rebuild it against twinwire-plugin with ABI v{ABI_VERSION})",
                path.display()
            ),
            LoadError::NoPanicUnwind { path } => write!(
                f,
                "plugin {} was built with panic = \"abort\"; refusing to load it, since any panic in \
                 it would abort the host (rebuild it with panic = \"unwind\")",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// The plugin's vtable: `'static` because the library is never unloaded.
#[derive(Clone, Copy)]
struct VTable(&'static TwAdapterV1);

// SAFETY: the vtable is immutable static data of a library that stays loaded; its function
// pointers may be called from any thread (the ABI contract).
unsafe impl Send for VTable {}
// SAFETY: as above.
unsafe impl Sync for VTable {}

/// A loaded plugin library. Cheap to clone. The library stays loaded for the life of the process.
#[derive(Clone)]
pub struct PluginLibrary {
    vtable: VTable,
    path: Arc<Path>,
    name: Arc<str>,
    connection_types: Arc<[String]>,
}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("connection_types", &self.connection_types)
            .finish()
    }
}

impl PluginLibrary {
    /// Loads the plugin library at `path` and checks that it speaks this host's ABI: the frozen
    /// header first (ABI version, vtable size), then the flags (`panic = "unwind"`).
    ///
    /// Loading runs the library's initialisers: load only trusted files. A library is never
    /// unloaded, whether it was accepted or refused.
    pub fn load(path: impl AsRef<Path>) -> Result<PluginLibrary, LoadError> {
        let path = path.as_ref().to_path_buf();
        // SAFETY: loading a shared library runs its initialisers; trusting the plugin file is
        // the premise of loading it at all (documented above).
        let library = unsafe { libloading::Library::new(&path) }.map_err(|e| LoadError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Never dlclose: thread-local destructors and threads of the plugin outlive any handle.
        let library: &'static libloading::Library = Box::leak(Box::new(library));
        // SAFETY: `TwEntryFn` is the documented type of the entry symbol.
        let entry = unsafe { library.get::<TwEntryFn>(ENTRY_SYMBOL) }
            .map_err(|_| LoadError::NotAPlugin { path: path.clone() })?;
        let entry: TwEntryFn = *entry;
        // SAFETY: calling the entry function is what the contract allows before any check; it
        // returns a pointer to a static.
        let raw = unsafe { entry() };
        if raw.is_null() || !raw.cast::<TwAdapterHeader>().is_aligned() {
            return Err(LoadError::BadEntry { path });
        }
        // Only the frozen header until the version is known.
        // SAFETY: non-null, aligned, and every version of the vtable begins with the header.
        let header = unsafe { raw.cast::<TwAdapterHeader>().read() };
        if header.abi_version != ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path,
                plugin: header.abi_version,
                host: ABI_VERSION,
            });
        }
        if header.struct_size < ADAPTER_V1_SIZE || !raw.is_aligned() {
            return Err(LoadError::StructTooSmall {
                path,
                size: header.struct_size,
                expected: ADAPTER_V1_SIZE,
            });
        }
        // SAFETY: same ABI version and at least our size: the pointer is a `TwAdapterV1` in a
        // static of a library that is never unloaded.
        let vtable: &'static TwAdapterV1 = unsafe { &*raw };
        if vtable.flags & FLAG_PANIC_UNWIND == 0 {
            return Err(LoadError::NoPanicUnwind { path });
        }
        // SAFETY: the contract makes the name a static string of the library.
        let name = String::from_utf8_lossy(unsafe { vtable.name.as_slice() }).into_owned();
        let types: &[TwBytes] = if vtable.connection_type_count == 0
            || vtable.connection_types.is_null()
        {
            &[]
        } else {
            // SAFETY: the contract makes `connection_types` a static array of that many views.
            unsafe {
                std::slice::from_raw_parts(vtable.connection_types, vtable.connection_type_count)
            }
        };
        let connection_types: Vec<String> = types
            .iter()
            // SAFETY: each view is a static string of the library.
            .map(|t| String::from_utf8_lossy(unsafe { t.as_slice() }).into_owned())
            .collect();
        Ok(PluginLibrary {
            vtable: VTable(vtable),
            path: path.into(),
            name: name.into(),
            connection_types: connection_types.into(),
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection types it serves.
    pub fn connection_types(&self) -> &[String] {
        &self.connection_types
    }

    /// Whether its adapter settles consumed messages ([`FLAG_SETTLES`]).
    pub fn settles(&self) -> bool {
        self.vtable.0.flags & FLAG_SETTLES != 0
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates an instance with `config` (the plugin defines its format), delivering inbound
    /// messages, status and logs to `sink`. Runs the plugin's blocking `create` on tokio's blocking
    /// pool. The error is the plugin's message, prefixed with what failed.
    ///
    /// The instance holds `sink` until it is dropped: a sink must not own the adapter (a cycle
    /// that would keep an unclosed instance alive for ever); give it a `Weak` if it needs one.
    pub async fn create(
        &self,
        config: &[u8],
        sink: Arc<dyn HostSink>,
    ) -> Result<PluginAdapter, String> {
        let ctx = Arc::new(HostCtx {
            sink,
            pending: Mutex::new(HashMap::new()),
            unknown_results: AtomicU64::new(0),
        });
        let vtable = self.vtable;
        let config = config.to_vec();
        let task_ctx = ctx.clone();
        let (status, instance, text) = tokio::task::spawn_blocking(move || {
            let callbacks = host_callbacks(&task_ctx);
            let mut instance: *mut c_void = std::ptr::null_mut();
            let mut error = TwBuf::empty();
            // SAFETY: every argument follows the contract: `callbacks` and `config` live for the
            // call, `ctx` (inside `callbacks`) until `close` returns (the adapter owns an `Arc`),
            // and both out-pointers are valid.
            let status = unsafe {
                (vtable.0.create)(
                    ABI_VERSION,
                    TwBytes::new(&config),
                    &callbacks,
                    &mut instance,
                    &mut error,
                )
            };
            // SAFETY: `error` was filled by this plugin (or left empty) and is not used again.
            let text = unsafe { take_buf(vtable, error) };
            (status, InstancePtr(instance), text)
        })
        .await
        .map_err(|e| format!("plugin {}: create did not finish: {e}", self.name))?;
        match status {
            TW_OK if !instance.0.is_null() => Ok(PluginAdapter {
                inner: Arc::new(AdapterInner {
                    library: self.clone(),
                    instance,
                    ctx,
                    gate: Gate::default(),
                    next_token: AtomicU64::new(1),
                    closed: Mutex::new(None),
                }),
            }),
            TW_OK => Err(format!("plugin {}: create returned no instance", self.name)),
            TW_ERR_THREADS_LEAKED => {
                // Its threads may still call back: `ctx` must stay valid for ever.
                std::mem::forget(ctx);
                Err(format!(
                    "plugin {}: create failed and left threads running: {text}",
                    self.name
                ))
            }
            TW_ERR_PANIC => Err(text),
            TW_ERR_ABI => Err(format!("plugin {}: ABI refused: {text}", self.name)),
            _ => Err(format!("plugin {}: create failed: {text}", self.name)),
        }
    }
}

/// Reads and frees a plugin-allocated buffer (through the plugin's own `free_buf`).
///
/// # Safety
/// `buf` must be empty or a buffer of this plugin, not yet freed.
unsafe fn take_buf(vtable: VTable, buf: TwBuf) -> String {
    if buf.ptr.is_null() {
        return String::new();
    }
    // SAFETY: the plugin's buffer holds `len` initialised bytes until it is freed below.
    let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) })
        .into_owned();
    // SAFETY: handed back exactly once, to the side that allocated it.
    unsafe { (vtable.0.free_buf)(buf) };
    text
}

/// The instance pointer of a plugin instance.
#[derive(Clone, Copy)]
struct InstancePtr(*mut c_void);

// SAFETY: the ABI lets a plugin instance be called from any thread; the host serialises `close`
// against every other call with its gate.
unsafe impl Send for InstancePtr {}
// SAFETY: as above.
unsafe impl Sync for InstancePtr {}

type SendResult = Result<Receipt, SendError>;

/// What the plugin's callbacks reach (`ctx`).
struct HostCtx {
    sink: Arc<dyn HostSink>,
    pending: Mutex<HashMap<u64, oneshot::Sender<SendResult>>>,
    unknown_results: AtomicU64,
}

impl HostCtx {
    fn pending(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<SendResult>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn host_callbacks(ctx: &Arc<HostCtx>) -> TwHostCallbacks {
    TwHostCallbacks {
        struct_size: size_of::<TwHostCallbacks>(),
        ctx: Arc::as_ptr(ctx).cast_mut().cast::<c_void>(),
        on_inbound,
        on_inbound_batch,
        on_send_result,
        on_status,
        log: on_log,
        on_metric: Some(on_metric),
    }
}

/// The host context behind `ctx`.
///
/// # Safety
/// `ctx` must be the pointer `host_callbacks` made, whose `HostCtx` is still alive (the contract:
/// until `close` returns, for ever if it leaked threads).
unsafe fn host_ctx<'a>(ctx: *mut c_void) -> &'a HostCtx {
    // SAFETY: guaranteed by the caller.
    unsafe { &*ctx.cast_const().cast::<HostCtx>() }
}

/// Runs a callback body under `catch_unwind`: a panicking sink must not unwind into the plugin
/// (that would abort the process).
fn callback<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

unsafe extern "C" fn on_inbound(
    ctx: *mut c_void,
    message: *const TwMessage,
    settle_token: u64,
) -> i32 {
    if ctx.is_null() || message.is_null() {
        return TW_ERR_INVALID;
    }
    callback(TW_ERR_PANIC, || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        // SAFETY: `message` is a valid view for the call; copied here, once.
        let message = unsafe { ffi::message_from_ffi(&*message) };
        ctx.sink
            .inbound(Inbound {
                message,
                settle_token,
            })
            .status()
    })
}

unsafe extern "C" fn on_inbound_batch(
    ctx: *mut c_void,
    entries: *const TwBatchEntry,
    count: usize,
    out_accepted: *mut usize,
) -> i32 {
    if ctx.is_null() || out_accepted.is_null() || (entries.is_null() && count != 0) {
        return TW_ERR_INVALID;
    }
    let mut accepted = 0;
    let status = callback(TW_ERR_PANIC, || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        let entries: &[TwBatchEntry] = if count == 0 {
            &[]
        } else {
            // SAFETY: the contract makes `entries` valid for `count` elements during the call.
            unsafe { std::slice::from_raw_parts(entries, count) }
        };
        let batch = entries
            .iter()
            .map(|e| Inbound {
                // SAFETY: each entry's message is a valid view for the call; copied here.
                message: unsafe { ffi::message_from_ffi(&e.message) },
                settle_token: e.token,
            })
            .collect();
        let answer = ctx.sink.inbound_batch(batch);
        accepted = answer.accepted.min(count);
        answer.rest.status()
    });
    // SAFETY: checked non-null; the contract makes it valid for a write.
    unsafe { out_accepted.write(accepted) };
    status
}

unsafe extern "C" fn on_send_result(ctx: *mut c_void, token: u64, status: i32, detail: TwBytes) {
    if ctx.is_null() {
        return;
    }
    callback((), || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        let waiter = ctx.pending().remove(&token);
        match waiter {
            Some(waiter) => {
                // SAFETY: `detail` is a valid view for the call.
                let detail = String::from_utf8_lossy(unsafe { detail.as_slice() });
                let _ = waiter.send(SendError::receipt_of(status, &detail));
            }
            // A token we never issued, or one already answered: a plugin bug, counted, harmless.
            None => {
                ctx.unknown_results.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

unsafe extern "C" fn on_status(ctx: *mut c_void, status: u32, detail: TwBytes) {
    if ctx.is_null() {
        return;
    }
    callback((), || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        // SAFETY: `detail` is a valid view for the call.
        let detail = String::from_utf8_lossy(unsafe { detail.as_slice() });
        match ConnectionStatus::from_code(status) {
            Some(status) => ctx.sink.status(status, &detail),
            None => ctx.sink.log(
                LogLevel::Warn,
                &format!("plugin reported unknown status {status}: {detail}"),
            ),
        }
    })
}

unsafe extern "C" fn on_metric(
    ctx: *mut c_void,
    name: TwBytes,
    labels: *const TwHeader,
    label_count: usize,
    value: f64,
) {
    if ctx.is_null() || (labels.is_null() && label_count > 0) {
        return;
    }
    callback((), || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        // SAFETY: `name` and the `label_count` labels are valid views for the call.
        let name = String::from_utf8_lossy(unsafe { name.as_slice() });
        let labels: &[TwHeader] = if label_count == 0 {
            &[]
        } else {
            // SAFETY: non-null and `label_count` entries long per the contract.
            unsafe { std::slice::from_raw_parts(labels, label_count) }
        };
        let owned: Vec<(String, String)> = labels
            .iter()
            .map(|l| {
                // SAFETY: each label's views are valid for the call.
                let (n, v) = unsafe { (l.name.as_slice(), l.value.as_slice()) };
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        ctx.sink.metric(&name, &borrowed, value);
    })
}

unsafe extern "C" fn on_log(ctx: *mut c_void, level: u32, text: TwBytes) {
    if ctx.is_null() {
        return;
    }
    callback((), || {
        // SAFETY: `ctx` is ours and alive per the contract.
        let ctx = unsafe { host_ctx(ctx) };
        // SAFETY: `text` is a valid view for the call.
        let text = String::from_utf8_lossy(unsafe { text.as_slice() });
        ctx.sink.log(LogLevel::from_code(level), &text);
    })
}

/// A running instance of a loaded plugin. Cheap to clone (clones drive the same instance).
///
/// Dropping the last clone of an instance that was not closed closes it on a background thread.
#[derive(Clone)]
pub struct PluginAdapter {
    inner: Arc<AdapterInner>,
}

struct AdapterInner {
    library: PluginLibrary,
    instance: InstancePtr,
    ctx: Arc<HostCtx>,
    /// Sends and settles are inside; `close` shuts it and waits for them.
    gate: Gate,
    next_token: AtomicU64,
    /// `Some(result)` once closed.
    closed: Mutex<Option<Result<(), String>>>,
}

impl fmt::Debug for PluginAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginAdapter")
            .field("plugin", &self.inner.library.name)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl PluginAdapter {
    /// The library the instance comes from.
    pub fn library(&self) -> &PluginLibrary {
        &self.inner.library
    }

    /// Sends `message`. The plugin gets it before this returns (without blocking); the future
    /// resolves with the plugin's result and need not be polled for the send to proceed.
    pub fn send(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<Receipt, SendError>> + Send + 'static {
        let started = self.inner.start_send(&message);
        drop(message);
        async move {
            match started {
                Ok(result) => result.await.unwrap_or(Err(SendError::Closed)),
                Err(e) => Err(e),
            }
        }
    }

    /// Sends every message of `messages` in one call across the boundary; the future resolves with
    /// their results in order.
    pub fn send_batch(
        &self,
        messages: &[Message],
    ) -> impl Future<Output = Vec<Result<Receipt, SendError>>> + Send + 'static {
        let started = self.inner.start_batch(messages);
        async move {
            let mut results = Vec::with_capacity(started.len());
            for started in started {
                results.push(match started {
                    Ok(result) => result.await.unwrap_or(Err(SendError::Closed)),
                    Err(e) => Err(e),
                });
            }
            results
        }
    }

    /// Tells the plugin the outcome of the inbound message it delivered with `settle_token`.
    /// Non-blocking.
    pub fn settle(&self, settle_token: u64, outcome: Outcome) -> Result<(), SendError> {
        let inner = &self.inner;
        let Some(_pass) = inner.gate.enter() else {
            return Err(SendError::Closed);
        };
        // SAFETY: the gate is open, so the instance is not closed; `settle` does not block.
        let status = unsafe {
            (inner.library.vtable.0.settle)(inner.instance.0, settle_token, outcome.code())
        };
        SendError::result_of(status, "settle refused by the plugin")
    }

    /// Closes the instance: waits for sends in progress to leave the plugin, then runs the
    /// plugin's `close` (on tokio's blocking pool), which joins its threads. Afterwards every
    /// pending send resolves to [`SendError::Closed`] and new ones fail with it. Closing again
    /// returns the first result.
    pub async fn close(&self) -> Result<(), String> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.close_blocking())
            .await
            .unwrap_or_else(|e| Err(format!("close did not finish: {e}")))
    }

    /// Whether the instance was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.gate.is_closing()
    }

    /// Send results the plugin reported for tokens that were not pending (unknown or duplicate):
    /// a plugin bug, counted and otherwise ignored.
    pub fn unknown_send_results(&self) -> u64 {
        self.inner.ctx.unknown_results.load(Ordering::Relaxed)
    }

    /// Sends accepted by the plugin whose result has not arrived yet.
    pub fn pending_sends(&self) -> usize {
        self.inner.ctx.pending().len()
    }
}

impl AdapterInner {
    fn start_send(&self, message: &Message) -> Result<oneshot::Receiver<SendResult>, SendError> {
        let Some(_pass) = self.gate.enter() else {
            return Err(SendError::Closed);
        };
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Registered before the call: the result may arrive inside it (inline poll).
        self.ctx.pending().insert(token, tx);
        let status = ffi::with_message_view(message, |view| {
            // SAFETY: the gate is open, so the instance is live and not being closed; `view`
            // borrows `message` for the call; no lock is held that a callback takes.
            unsafe { (self.library.vtable.0.send)(self.instance.0, view, token) }
        });
        if status != TW_OK {
            self.ctx.pending().remove(&token);
            return Err(refusal(status));
        }
        Ok(rx)
    }

    fn start_batch(
        &self,
        messages: &[Message],
    ) -> Vec<Result<oneshot::Receiver<SendResult>, SendError>> {
        let Some(_pass) = self.gate.enter() else {
            return messages.iter().map(|_| Err(SendError::Closed)).collect();
        };
        let first = self
            .next_token
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        let mut receivers = Vec::with_capacity(messages.len());
        {
            let mut pending = self.ctx.pending();
            for i in 0..messages.len() {
                let (tx, rx) = oneshot::channel();
                pending.insert(first + i as u64, tx);
                receivers.push(rx);
            }
        }
        let mut statuses = vec![TW_OK; messages.len()];
        let tokens = (0..messages.len() as u64).map(|i| first + i);
        let status = ffi::with_batch_view(messages.iter().zip(tokens), |entries| {
            // SAFETY: the gate is open; `entries` borrows `messages` for the call; `statuses` has
            // one slot per entry.
            unsafe {
                (self.library.vtable.0.send_batch)(
                    self.instance.0,
                    entries.as_ptr(),
                    entries.len(),
                    statuses.as_mut_ptr(),
                )
            }
        });
        receivers
            .into_iter()
            .zip(statuses)
            .enumerate()
            .map(|(i, (rx, each))| {
                let each = if status != TW_OK { status } else { each };
                if each == TW_OK {
                    Ok(rx)
                } else {
                    self.ctx.pending().remove(&(first + i as u64));
                    Err(refusal(each))
                }
            })
            .collect()
    }

    fn close_blocking(&self) -> Result<(), String> {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = closed.as_ref() {
            return result.clone();
        }
        // No send or settle is inside the plugin after this, and none enters.
        self.gate.close_and_wait(None);
        let result = close_instance(
            self.library.vtable,
            self.instance,
            &self.ctx,
            &self.library.name,
        );
        *closed = Some(result.clone());
        result
    }
}

impl Drop for AdapterInner {
    fn drop(&mut self) {
        let closed = self.closed.get_mut().unwrap_or_else(|e| e.into_inner());
        if closed.is_some() {
            return;
        }
        // Not closed: close it off this thread (close blocks, and this may be an async thread).
        let (vtable, instance, ctx) = (self.library.vtable, self.instance, self.ctx.clone());
        let name = self.library.name.clone();
        let spawned = std::thread::Builder::new()
            .name("twinwire-plugin-close".to_owned())
            .spawn(move || {
                if let Err(e) = close_instance(vtable, instance, &ctx, &name) {
                    ctx.sink.log(LogLevel::Error, &e);
                }
            });
        if spawned.is_err() {
            // Cannot close: leave the instance running, and its callbacks a valid `ctx`.
            std::mem::forget(self.ctx.clone());
        }
    }
}

/// Runs the plugin's `close` on this (blocking) thread; then fails every pending send as closed.
fn close_instance(
    vtable: VTable,
    instance: InstancePtr,
    ctx: &Arc<HostCtx>,
    name: &str,
) -> Result<(), String> {
    let mut error = TwBuf::empty();
    // SAFETY: the instance is live, closed exactly once, and nothing else calls it now (the gate is
    // shut, or the last handle is gone); `error` is valid for a write.
    let status = unsafe { (vtable.0.close)(instance.0, &mut error) };
    // SAFETY: filled by this plugin (or empty), not used again.
    let text = unsafe { take_buf(vtable, error) };
    // No callback comes any more (unless threads leaked, and then results are merely unknown).
    let pending = std::mem::take(&mut *ctx.pending());
    for (_, waiter) in pending {
        let _ = waiter.send(Err(SendError::Closed));
    }
    match status {
        TW_OK => Ok(()),
        TW_ERR_THREADS_LEAKED => {
            // Leaked threads may still call back: `ctx` stays valid for ever.
            std::mem::forget(ctx.clone());
            Err(format!("plugin {name}: close left threads running: {text}"))
        }
        _ => Err(format!("plugin {name}: close failed: {text}")),
    }
}

/// The error for a send the plugin refused without a callback.
fn refusal(status: i32) -> SendError {
    SendError::from_status(status, "refused by the plugin")
        .unwrap_or_else(|| SendError::Invalid("refused with status 0".to_owned()))
}

#[async_trait]
impl Adapter for PluginAdapter {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        PluginAdapter::send(self, message).await
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        if let Err(e) = PluginAdapter::settle(self, settle_token, outcome) {
            self.inner.ctx.sink.log(
                LogLevel::Warn,
                &format!("settle({settle_token}) failed: {e}"),
            );
        }
    }

    async fn close(&self) {
        if let Err(e) = PluginAdapter::close(self).await {
            self.inner.ctx.sink.log(LogLevel::Error, &e);
        }
    }
}

/// Creates an instance of the statically linked adapter `P`, delivering to `sink`: the same
/// handle as a loaded plugin's, without the boundary (it runs on the caller's runtime).
pub async fn create_static<P: Plugin>(
    config: &[u8],
    sink: Arc<dyn HostSink>,
) -> Result<Arc<dyn Adapter>, String> {
    let adapter = P::create(config, Host::new(sink)).await?;
    Ok(Arc::new(adapter))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl HostSink for Quiet {
        fn inbound(&self, _: Inbound) -> crate::Delivery {
            crate::Delivery::Accepted
        }
        fn status(&self, _: ConnectionStatus, _: &str) {}
        fn log(&self, _: LogLevel, _: &str) {}
    }

    #[test]
    fn unknown_and_duplicate_send_results_are_counted_not_trusted() {
        let ctx = Arc::new(HostCtx {
            sink: Arc::new(Quiet),
            pending: Mutex::new(HashMap::new()),
            unknown_results: AtomicU64::new(0),
        });
        let callbacks = host_callbacks(&ctx);
        let (tx, mut rx) = oneshot::channel();
        ctx.pending().insert(7, tx);
        for token in [7, 7, 8, u64::MAX] {
            // SAFETY: `ctx` is alive for the whole test; the detail is a valid view.
            unsafe {
                (callbacks.on_send_result)(
                    callbacks.ctx,
                    token,
                    TW_ERR_REJECTED,
                    TwBytes::new(b"no"),
                )
            };
        }
        assert_eq!(rx.try_recv(), Ok(Err(SendError::Rejected("no".to_owned()))));
        assert_eq!(ctx.unknown_results.load(Ordering::Relaxed), 3);
        // A null context is ignored, not dereferenced.
        // SAFETY: null is handled by the callback.
        unsafe { (callbacks.on_send_result)(std::ptr::null_mut(), 7, TW_OK, TwBytes::EMPTY) };
    }
}
