//! The plugin side of the boundary: generic `extern "C"` functions that [`export_adapter!`]
//! instantiates for a [`Plugin`]. Not a public API (hidden; used by the macro only).
//!
//! - Each instance runs its own tokio multi-thread runtime on its own threads.
//! - `send`/`settle` are polled once inline on the caller's thread with a no-op waker (unless
//!   [`RuntimeConfig::inline_first_poll`] is off) and spawned on the plugin runtime if pending.
//! - Every exported function runs under `catch_unwind`, every poll of an adapter future under a
//!   `CatchUnwind`: a panic in `send` becomes a send result with [`TW_ERR_PANIC`] and the panic's
//!   message, and the instance keeps working.
//! - A panic hook forwards plugin panics to the host's `log` callback.
//! - `create` and `close` block: the host calls them off its async threads.
//!
//! [`export_adapter!`]: crate::export_adapter

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::future::Future;
use std::mem::size_of;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};

use crate::ffi::{self, *};
use crate::gate::Gate;
use crate::{
    BatchDelivery, ConnectionStatus, Delivery, Host, HostSink, Inbound, LogLevel, Message, Outcome,
    Plugin, Receipt, RuntimeConfig, SendError,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A send in progress, its panics caught.
type SendInProgress = CatchUnwind<BoxFuture<Result<Receipt, SendError>>>;

// ---- the static vtable the macro defines ----

/// The plugin's vtable as a static. `Sync` because it is immutable and points only to `'static`
/// data (the name and connection-type strings and the array of their views).
#[derive(Debug)]
pub struct StaticVTable(pub TwAdapterV1);

// SAFETY: the vtable is never mutated; its pointers refer to immutable `'static` data.
unsafe impl Sync for StaticVTable {}

impl StaticVTable {
    /// The vtable of plugin `T` claiming ABI `abi_version` (always [`ABI_VERSION`] but in the
    /// ABI-mismatch tests), with its connection types and whether it unwinds on panic.
    pub const fn new<T: Plugin>(
        abi_version: u32,
        types: &'static [TwBytes],
        unwind: bool,
    ) -> StaticVTable {
        StaticVTable(TwAdapterV1 {
            abi_version,
            struct_size: ADAPTER_V1_SIZE,
            flags: (if unwind { FLAG_PANIC_UNWIND } else { 0 })
                | (if T::SETTLES { FLAG_SETTLES } else { 0 }),
            name: TwBytes::new(T::NAME.as_bytes()),
            connection_types: types.as_ptr(),
            connection_type_count: types.len(),
            create: create::<T>,
            send: send::<T>,
            send_batch: send_batch::<T>,
            settle: settle::<T>,
            close: close::<T>,
            free_buf,
        })
    }
}

/// The views of a plugin's connection types, as a static.
#[derive(Debug)]
pub struct ConnectionTypes<const N: usize>(pub [TwBytes; N]);

// SAFETY: immutable views of `'static` strings.
unsafe impl<const N: usize> Sync for ConnectionTypes<N> {}

impl<const N: usize> ConnectionTypes<N> {
    /// Views of `types`, which must have `N` entries.
    pub const fn new(types: &'static [&'static str]) -> ConnectionTypes<N> {
        assert!(types.len() == N, "connection type count");
        let mut out = [TwBytes::EMPTY; N];
        let mut i = 0;
        while i < N {
            out[i] = TwBytes::new(types[i].as_bytes());
            i += 1;
        }
        ConnectionTypes(out)
    }
}

// ---- the host, as the plugin sees it ----

/// Copies the host's callback table: as much of it as both sides know; callbacks appended after
/// the host's table ends stay `None`.
///
/// # Safety
/// `host` must point to a table of at least `host_size` (≥ [`HOST_CALLBACKS_V1_SIZE`]) bytes.
unsafe fn read_host_callbacks(host: *const TwHostCallbacks, host_size: usize) -> TwHostCallbacks {
    let size = host_size.min(size_of::<TwHostCallbacks>());
    let mut table = std::mem::MaybeUninit::<TwHostCallbacks>::zeroed();
    // SAFETY: `size` bytes are readable at `host` (the caller) and writable in `table`.
    unsafe {
        std::ptr::copy_nonoverlapping(host.cast::<u8>(), table.as_mut_ptr().cast::<u8>(), size)
    };
    // SAFETY: every field before `on_metric` was copied (size ≥ its offset), and the fields
    // after it are `Option`s of function pointers, for which zero is `None`.
    unsafe { table.assume_init() }
}

/// The host's callbacks behind a gate: after `close` has shut it, calls from threads the plugin
/// leaked are dropped instead of reaching a `ctx` the host may have freed.
struct FfiHost {
    callbacks: TwHostCallbacks,
    gate: Gate,
}

// SAFETY: the ABI contract makes the host callbacks callable from any thread, concurrently, with
// the host's `ctx`; the struct itself is immutable.
unsafe impl Send for FfiHost {}
// SAFETY: as above.
unsafe impl Sync for FfiHost {}

impl FfiHost {
    fn send_result(&self, token: u64, result: &Result<Receipt, SendError>) {
        let (status, detail) = match result {
            Ok(receipt) => (TW_OK, receipt.metadata.as_str()),
            Err(e) => (e.status(), e.detail()),
        };
        if let Some(_pass) = self.gate.enter() {
            // SAFETY: the gate is open, so `close` has not returned and `ctx` is valid; `detail`
            // outlives the call.
            unsafe {
                (self.callbacks.on_send_result)(
                    self.callbacks.ctx,
                    token,
                    status,
                    TwBytes::new(detail.as_bytes()),
                )
            }
        }
    }

    fn log_code(&self, level: u32, text: &str) -> bool {
        match self.gate.enter() {
            Some(_pass) => {
                // SAFETY: the gate is open, so `ctx` is valid; `text` outlives the call.
                unsafe {
                    (self.callbacks.log)(self.callbacks.ctx, level, TwBytes::new(text.as_bytes()))
                };
                true
            }
            None => false,
        }
    }
}

impl HostSink for FfiHost {
    fn inbound(&self, inbound: Inbound) -> Delivery {
        let Some(_pass) = self.gate.enter() else {
            return Delivery::Refused;
        };
        let status = ffi::with_message_view(&inbound.message, |view| {
            // SAFETY: the gate is open, so `ctx` is valid; `view` borrows `inbound.message`, which
            // outlives the call.
            unsafe { (self.callbacks.on_inbound)(self.callbacks.ctx, view, inbound.settle_token) }
        });
        Delivery::from_status(status)
    }

    fn inbound_batch(&self, batch: Vec<Inbound>) -> BatchDelivery {
        let Some(_pass) = self.gate.enter() else {
            return BatchDelivery {
                accepted: 0,
                rest: Delivery::Refused,
            };
        };
        let count = batch.len();
        let mut accepted = 0usize;
        let status = ffi::with_batch_view(
            batch.iter().map(|i| (&i.message, i.settle_token)),
            |entries| {
                // SAFETY: the gate is open, so `ctx` is valid; `entries` borrows `batch`, which
                // outlives the call; `accepted` is a valid place to write.
                unsafe {
                    (self.callbacks.on_inbound_batch)(
                        self.callbacks.ctx,
                        entries.as_ptr(),
                        count,
                        &mut accepted,
                    )
                }
            },
        );
        BatchDelivery {
            accepted: accepted.min(count),
            rest: if status == TW_OK && accepted >= count {
                Delivery::Accepted
            } else if status == TW_OK {
                // Took fewer than all but said OK: treat the rest as backpressure.
                Delivery::Backpressure
            } else {
                Delivery::from_status(status)
            },
        }
    }

    fn status(&self, status: ConnectionStatus, detail: &str) {
        if let Some(_pass) = self.gate.enter() {
            // SAFETY: the gate is open, so `ctx` is valid; `detail` outlives the call.
            unsafe {
                (self.callbacks.on_status)(
                    self.callbacks.ctx,
                    status.code(),
                    TwBytes::new(detail.as_bytes()),
                )
            }
        }
    }

    fn log(&self, level: LogLevel, text: &str) {
        self.log_code(level.code(), text);
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some(on_metric) = self.callbacks.on_metric else {
            return; // a host of the first version keeps no adapter metrics
        };
        let Some(_pass) = self.gate.enter() else {
            return;
        };
        let views: Vec<TwHeader> = labels
            .iter()
            .map(|(n, v)| TwHeader {
                name: TwBytes::new(n.as_bytes()),
                value: TwBytes::new(v.as_bytes()),
            })
            .collect();
        // SAFETY: the gate is open, so `ctx` is valid; `name` and `views` outlive the call.
        unsafe {
            on_metric(
                self.callbacks.ctx,
                TwBytes::new(name.as_bytes()),
                views.as_ptr(),
                views.len(),
                value,
            )
        }
    }
}

// ---- panics ----

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Polls the inner future under `catch_unwind`: a panic becomes `Err(message)`. While it polls,
/// the panic hook logs to this instance's host.
struct CatchUnwind<F> {
    future: F,
    host: Arc<FfiHost>,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let previous = POLLING_FOR.replace(Arc::as_ptr(&this.host));
        let polled = panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.future).poll(cx)));
        POLLING_FOR.set(previous);
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
}

thread_local! {
    /// The host of the instance whose future this thread is polling (null if none): the panic
    /// hook logs there. A plain pointer (no destructor, so no TLS destructor is registered on host
    /// threads); valid while set, since the polling `CatchUnwind` holds the `Arc`.
    static POLLING_FOR: Cell<*const FfiHost> = const { Cell::new(std::ptr::null()) };
}

/// The plugin's name, for the panic hook (one plugin per library).
static PLUGIN_NAME: OnceLock<&'static str> = OnceLock::new();
/// Live instances' hosts; the panic hook logs through the newest.
static HOOK_TARGETS: Mutex<Vec<(u64, Arc<FfiHost>)>> = Mutex::new(Vec::new());
static NEXT_HOOK_ID: AtomicU64 = AtomicU64::new(1);
static HOOK: Once = Once::new();

/// Installs (once per library) a panic hook forwarding plugin panics to the host's `log`. The
/// plugin has its own std, so the host's hook never sees them; without this they would go to
/// stderr, with host threads shown as `<unnamed>`.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let polling = POLLING_FOR.with(|p| p.get());
            let target = if polling.is_null() {
                HOOK_TARGETS
                    .try_lock()
                    .ok()
                    .and_then(|targets| targets.last().map(|(_, host)| host.clone()))
            } else {
                // SAFETY: set only while a `CatchUnwind` holding this `Arc` polls on this thread,
                // and the hook runs inside that poll.
                unsafe {
                    Arc::increment_strong_count(polling);
                    Some(Arc::from_raw(polling))
                }
            };
            let forwarded = target.is_some_and(|host| {
                let thread = std::thread::current();
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let text = format!(
                    "plugin {}: thread '{}' panicked at {location}: {}",
                    PLUGIN_NAME.get().copied().unwrap_or("?"),
                    thread.name().unwrap_or("<host thread>"),
                    panic_message(info.payload())
                );
                host.log_code(TW_LOG_ERROR, &text)
            });
            if !forwarded {
                previous(info);
            }
        }));
    });
}

fn register_hook_target(host: Arc<FfiHost>) -> u64 {
    let id = NEXT_HOOK_ID.fetch_add(1, Ordering::Relaxed);
    HOOK_TARGETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, host));
    id
}

fn unregister_hook_target(id: u64) {
    HOOK_TARGETS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| *i != id);
}

/// Runs `f` under `catch_unwind`; a panic becomes `on_panic(message)`.
fn guarded<R>(on_panic: impl FnOnce(String) -> R, f: impl FnOnce() -> R) -> R {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => on_panic(panic_message(&*payload)),
    }
}

/// Writes `text` into `*out` if the host gave a place for it.
///
/// # Safety
/// `out` must be null or valid for a write of a `TwBuf`.
unsafe fn write_error(out: *mut TwBuf, text: String) {
    if !out.is_null() {
        // SAFETY: the caller guarantees `out` is valid for writes; the host returns the buffer
        // through our `free_buf`.
        unsafe { out.write(ffi::buf_from_string(text)) };
    }
}

// ---- the instance ----

struct Instance<T: Plugin> {
    adapter: Arc<T>,
    runtime: Runtime,
    handle: Handle,
    host: Arc<FfiHost>,
    config: RuntimeConfig,
    threads: Arc<AtomicUsize>,
    hook_id: u64,
}

impl<T: Plugin> Instance<T> {
    /// Polls `fut` once inline (if configured), else / then spawns it on the plugin runtime, and
    /// calls `done` with its output or its panic's message.
    fn drive<O: Send + 'static>(
        &self,
        fut: BoxFuture<O>,
        done: impl FnOnce(Result<O, String>) + Send + 'static,
    ) {
        let mut fut = CatchUnwind {
            future: fut,
            host: self.host.clone(),
        };
        if self.config.inline_first_poll {
            let _enter = self.handle.enter();
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut cx) {
                done(out);
                return;
            }
        }
        self.handle.spawn(async move { done(fut.await) });
    }

    fn send_future(&self, message: Message) -> BoxFuture<Result<Receipt, SendError>> {
        let adapter = self.adapter.clone();
        Box::pin(async move { adapter.send(message).await })
    }
}

fn flatten_send(result: Result<Result<Receipt, SendError>, String>) -> Result<Receipt, SendError> {
    result.unwrap_or_else(|panic| Err(SendError::Panicked(panic)))
}

/// Drives the pending sends of one batch on one task (one hop for the whole batch).
struct SendBatch {
    sends: Vec<Option<(u64, SendInProgress)>>,
    left: usize,
    host: Arc<FfiHost>,
}

impl Future for SendBatch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for slot in this.sends.iter_mut() {
            if let Some((token, fut)) = slot {
                if let Poll::Ready(out) = Pin::new(fut).poll(cx) {
                    this.host.send_result(*token, &flatten_send(out));
                    *slot = None;
                    this.left -= 1;
                }
            }
        }
        if this.left == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

// ---- the exported functions ----

/// `create`; see [`TwCreateFn`].
///
/// # Safety
/// The arguments must follow the ABI contract.
pub unsafe extern "C" fn create<T: Plugin>(
    host_abi_version: u32,
    config: TwBytes,
    host: *const TwHostCallbacks,
    out_instance: *mut *mut c_void,
    out_error: *mut TwBuf,
) -> i32 {
    let result = guarded(
        |panic| {
            Err((
                TW_ERR_PANIC,
                format!("plugin {} panicked in create: {panic}", T::NAME),
            ))
        },
        || {
            if host.is_null() || out_instance.is_null() {
                return Err((
                    TW_ERR_INVALID,
                    "create: null host callbacks or out_instance".to_owned(),
                ));
            }
            if host_abi_version != ABI_VERSION {
                let name = T::NAME;
                return Err((
                    TW_ERR_ABI,
                    format!(
                        "plugin {name} speaks twinwire plugin ABI v{ABI_VERSION}, \
                         but the host speaks v{host_abi_version}"
                    ),
                ));
            }
            // The size first: a host of another version may hand a shorter table.
            // SAFETY: non-null, and every version of the table begins with `struct_size`.
            let host_size = unsafe { std::ptr::addr_of!((*host).struct_size).read() };
            if host_size < HOST_CALLBACKS_V1_SIZE {
                let (name, ours) = (T::NAME, HOST_CALLBACKS_V1_SIZE);
                return Err((
                    TW_ERR_ABI,
                    format!(
                        "plugin {name}: the host's callback table is {host_size} bytes, \
                         expected at least {ours}"
                    ),
                ));
            }
            // SAFETY: non-null, at least the first version's size, valid for the call per
            // contract; copied.
            let callbacks = unsafe { read_host_callbacks(host, host_size) };
            // SAFETY: the contract makes `config` valid for the call; `create_instance` copies it.
            let config = unsafe { config.as_slice() };
            create_instance::<T>(config, callbacks)
        },
    );
    match result {
        Ok(instance) => {
            // SAFETY: checked non-null above (an `Ok` implies it); valid for writes per contract.
            unsafe { out_instance.write(instance) };
            TW_OK
        }
        Err((status, text)) => {
            // SAFETY: the contract makes `out_error` null or valid for writes.
            unsafe { write_error(out_error, text) };
            status
        }
    }
}

fn create_instance<T: Plugin>(
    config: &[u8],
    callbacks: TwHostCallbacks,
) -> Result<*mut c_void, (i32, String)> {
    let _ = PLUGIN_NAME.set(T::NAME);
    let host = Arc::new(FfiHost {
        callbacks,
        gate: Gate::default(),
    });
    install_panic_hook();
    let hook_id = register_hook_target(host.clone());

    let config_owned = config.to_vec();
    let runtime_config = T::runtime_config(config);
    let threads = Arc::new(AtomicUsize::new(0));
    let runtime = {
        let (up, down) = (threads.clone(), threads.clone());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(runtime_config.worker_threads.max(1))
            .thread_name(runtime_config.thread_name.clone())
            .on_thread_start(move || {
                up.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                down.fetch_sub(1, Ordering::SeqCst);
            })
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            host.gate
                .close_and_wait(Some(runtime_config.shutdown_timeout));
            unregister_hook_target(hook_id);
            return Err((
                TW_ERR_CREATE,
                format!("plugin {}: cannot start its runtime: {e}", T::NAME),
            ));
        }
    };

    // The constructor runs on a plugin worker; this (host blocking-pool) thread only waits.
    let author_host = Host::new(host.clone());
    let create = CatchUnwind {
        future: Box::pin(async move { T::create(&config_owned, author_host).await }),
        host: host.clone(),
    };
    let created = runtime.block_on(runtime.spawn(create));
    let failure = match created {
        Ok(Ok(Ok(adapter))) => {
            let handle = runtime.handle().clone();
            let instance = Box::new(Instance {
                adapter: Arc::new(adapter),
                runtime,
                handle,
                host,
                config: runtime_config,
                threads,
                hook_id,
            });
            return Ok(Box::into_raw(instance).cast::<c_void>());
        }
        Ok(Ok(Err(text))) => (TW_ERR_CREATE, text),
        Ok(Err(panic)) => (
            TW_ERR_PANIC,
            format!("plugin {} panicked in create: {panic}", T::NAME),
        ),
        Err(join) if join.is_panic() => (
            TW_ERR_PANIC,
            format!(
                "plugin {} panicked in create: {}",
                T::NAME,
                panic_message(&*join.into_panic())
            ),
        ),
        Err(join) => (
            TW_ERR_CREATE,
            format!("plugin {}: create did not finish: {join}", T::NAME),
        ),
    };
    match teardown(runtime, &threads, &host, hook_id, &runtime_config) {
        Ok(()) => Err(failure),
        Err(leak) => Err((TW_ERR_THREADS_LEAKED, format!("{}; {leak}", failure.1))),
    }
}

/// Shuts the runtime down (joining its threads), then the host gate. `Err` if a thread may
/// still be running.
fn teardown(
    runtime: Runtime,
    threads: &AtomicUsize,
    host: &FfiHost,
    hook_id: u64,
    config: &RuntimeConfig,
) -> Result<(), String> {
    let timeout = config.shutdown_timeout;
    let start = Instant::now();
    // Drops every task; joins every worker and blocking thread if they all end within `timeout`.
    runtime.shutdown_timeout(timeout);
    let shutdown_took = start.elapsed();
    let drained = host
        .gate
        .close_and_wait(Some(timeout.max(Duration::from_millis(100))));
    unregister_hook_target(hook_id);
    let alive = threads.load(Ordering::SeqCst);
    if alive != 0 || shutdown_took >= timeout || !drained {
        return Err(format!(
            "{alive} plugin runtime thread(s) still running after {timeout:?}{}",
            if drained {
                ""
            } else {
                ", a host callback still in progress"
            }
        ));
    }
    Ok(())
}

/// `send`; see [`TwSendFn`].
///
/// # Safety
/// The arguments must follow the ABI contract; `instance` must come from `create` of this plugin
/// and not be closed.
pub unsafe extern "C" fn send<T: Plugin>(
    instance: *mut c_void,
    message: *const TwMessage,
    token: u64,
) -> i32 {
    guarded(
        |_| TW_ERR_PANIC,
        || {
            if instance.is_null() || message.is_null() {
                return TW_ERR_INVALID;
            }
            // SAFETY: the contract makes `instance` a live instance of `T` made by `create::<T>`.
            let inst = unsafe { &*instance.cast::<Instance<T>>() };
            // SAFETY: the contract makes `message` a valid view for the call; it is copied here.
            let message = unsafe { ffi::message_from_ffi(&*message) };
            let host = inst.host.clone();
            inst.drive(inst.send_future(message), move |out| {
                host.send_result(token, &flatten_send(out))
            });
            TW_OK
        },
    )
}

/// `send_batch`; see [`TwSendBatchFn`].
///
/// # Safety
/// As [`send`], with `entries` and `out_status` valid for `count` elements.
pub unsafe extern "C" fn send_batch<T: Plugin>(
    instance: *mut c_void,
    entries: *const TwBatchEntry,
    count: usize,
    out_status: *mut i32,
) -> i32 {
    guarded(
        |_| TW_ERR_PANIC,
        || {
            if count == 0 {
                return TW_OK;
            }
            if instance.is_null() || entries.is_null() || out_status.is_null() {
                return TW_ERR_INVALID;
            }
            // SAFETY: the contract makes `instance` a live instance of `T`.
            let inst = unsafe { &*instance.cast::<Instance<T>>() };
            // SAFETY: the contract makes `entries` valid for `count` elements during the call.
            let entries = unsafe { std::slice::from_raw_parts(entries, count) };
            // SAFETY: the contract makes `out_status` valid for `count` writes, not aliased.
            let out_status = unsafe { std::slice::from_raw_parts_mut(out_status, count) };
            out_status.fill(TW_OK);
            let mut pending = Vec::new();
            let mut cx = Context::from_waker(Waker::noop());
            let _enter = inst.handle.enter();
            for (entry, status) in entries.iter().zip(out_status.iter_mut()) {
                // A panic while copying one message refuses that message only.
                let started = panic::catch_unwind(AssertUnwindSafe(|| {
                    // SAFETY: the contract makes each entry's message valid during the call.
                    let message = unsafe { ffi::message_from_ffi(&entry.message) };
                    CatchUnwind {
                        future: inst.send_future(message),
                        host: inst.host.clone(),
                    }
                }));
                let Ok(mut fut) = started else {
                    *status = TW_ERR_PANIC;
                    continue;
                };
                if inst.config.inline_first_poll {
                    if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut cx) {
                        inst.host.send_result(entry.token, &flatten_send(out));
                        continue;
                    }
                }
                pending.push(Some((entry.token, fut)));
            }
            if !pending.is_empty() {
                let left = pending.len();
                inst.handle.spawn(SendBatch {
                    sends: pending,
                    left,
                    host: inst.host.clone(),
                });
            }
            TW_OK
        },
    )
}

/// `settle`; see [`TwSettleFn`].
///
/// # Safety
/// As [`send`].
pub unsafe extern "C" fn settle<T: Plugin>(
    instance: *mut c_void,
    settle_token: u64,
    outcome: u32,
) -> i32 {
    guarded(
        |_| TW_ERR_PANIC,
        || {
            let Some(outcome) = Outcome::from_code(outcome) else {
                return TW_ERR_INVALID;
            };
            if instance.is_null() {
                return TW_ERR_INVALID;
            }
            // SAFETY: the contract makes `instance` a live instance of `T`.
            let inst = unsafe { &*instance.cast::<Instance<T>>() };
            let adapter = inst.adapter.clone();
            let host = inst.host.clone();
            inst.drive(
                Box::pin(async move { adapter.settle(settle_token, outcome).await }),
                move |out| {
                    if let Err(panic) = out {
                        host.log_code(
                            TW_LOG_ERROR,
                            &format!(
                                "plugin {}: settle({settle_token}) panicked: {panic}",
                                T::NAME
                            ),
                        );
                    }
                },
            );
            TW_OK
        },
    )
}

/// `close`; see [`TwCloseFn`].
///
/// # Safety
/// `instance` must come from `create` of this plugin, not be closed, and no other call on it may
/// overlap; `out_error` null or valid for a write.
pub unsafe extern "C" fn close<T: Plugin>(instance: *mut c_void, out_error: *mut TwBuf) -> i32 {
    if instance.is_null() {
        return TW_ERR_INVALID;
    }
    // SAFETY: the contract makes `instance` the pointer `create::<T>` produced with
    // `Box::into_raw`, handed back exactly once.
    let instance = unsafe { Box::from_raw(instance.cast::<Instance<T>>()) };
    let result = guarded(
        |panic| {
            Err((
                TW_ERR_PANIC,
                format!("plugin {} panicked in close: {panic}", T::NAME),
            ))
        },
        || close_instance(*instance),
    );
    match result {
        Ok(()) => TW_OK,
        Err((status, text)) => {
            // SAFETY: the contract makes `out_error` null or valid for writes.
            unsafe { write_error(out_error, text) };
            status
        }
    }
}

fn close_instance<T: Plugin>(instance: Instance<T>) -> Result<(), (i32, String)> {
    let Instance {
        adapter,
        runtime,
        handle,
        host,
        config,
        threads,
        hook_id,
    } = instance;
    // 1. The adapter's own close, on its runtime, bounded.
    let closing = adapter.clone();
    let join = runtime.spawn(async move { closing.close().await });
    let closed =
        runtime.block_on(async { tokio::time::timeout(config.shutdown_timeout, join).await });
    let close_error = match closed {
        Ok(Ok(())) => None,
        Ok(Err(join)) if join.is_panic() => Some((
            TW_ERR_PANIC,
            format!(
                "plugin {} panicked in close: {}",
                T::NAME,
                panic_message(&*join.into_panic())
            ),
        )),
        Ok(Err(join)) => Some((
            TW_ERR_PANIC,
            format!("plugin {}: close did not finish: {join}", T::NAME),
        )),
        Err(_) => {
            // Not fatal by itself: the runtime shutdown below drops the unfinished close and
            // tells whether every thread ended.
            host.log_code(
                TW_LOG_WARN,
                &format!(
                    "plugin {}: close did not finish within {:?}; shutting its runtime down",
                    T::NAME,
                    config.shutdown_timeout
                ),
            );
            None
        }
    };
    // Our reference to the adapter goes while its runtime is still there (its drop may need it).
    {
        let _enter = handle.enter();
        drop(adapter);
    }
    drop(handle);
    // 2. Runtime shutdown: drops every task (pending sends never report; the host fails them as
    //    closed), joins every thread. 3. Host gate: no callback after this.
    let teardown = teardown(runtime, &threads, &host, hook_id, &config);
    match (teardown, close_error) {
        (Err(leak), other) => Err((
            TW_ERR_THREADS_LEAKED,
            match other {
                Some((_, text)) => format!("plugin {}: {leak}; {text}", T::NAME),
                None => format!("plugin {}: {leak}", T::NAME),
            },
        )),
        (Ok(()), Some(error)) => Err(error),
        (Ok(()), None) => Ok(()),
    }
}

/// `free_buf`; see [`TwFreeBufFn`].
///
/// # Safety
/// `buf` must be a buffer this plugin handed out, not yet freed.
pub unsafe extern "C" fn free_buf(buf: TwBuf) {
    // SAFETY: the contract makes `buf` one of ours (from `buf_from_string`), freed once.
    guarded(|_| (), || unsafe { ffi::free_own_buf(buf) });
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn inbound(_: *mut c_void, _: *const TwMessage, _: u64) -> i32 {
        TW_OK
    }
    unsafe extern "C" fn batch(
        _: *mut c_void,
        _: *const TwBatchEntry,
        _: usize,
        _: *mut usize,
    ) -> i32 {
        TW_OK
    }
    unsafe extern "C" fn result(_: *mut c_void, _: u64, _: i32, _: TwBytes) {}
    unsafe extern "C" fn status(_: *mut c_void, _: u32, _: TwBytes) {}
    unsafe extern "C" fn metric(_: *mut c_void, _: TwBytes, _: *const TwHeader, _: usize, _: f64) {}

    #[test]
    fn a_first_version_host_table_has_no_metric_callback() {
        let table = TwHostCallbacks {
            struct_size: size_of::<TwHostCallbacks>(),
            ctx: std::ptr::null_mut(),
            on_inbound: inbound,
            on_inbound_batch: batch,
            on_send_result: result,
            on_status: status,
            log: status,
            on_metric: Some(metric),
        };
        // SAFETY: the table is whole; a shorter size reads a prefix of it.
        let full = unsafe { read_host_callbacks(&table, size_of::<TwHostCallbacks>()) };
        assert!(full.on_metric.is_some());
        // SAFETY: as above.
        let first = unsafe { read_host_callbacks(&table, HOST_CALLBACKS_V1_SIZE) };
        assert!(first.on_metric.is_none());
        assert_eq!(first.struct_size, table.struct_size);
    }
}
