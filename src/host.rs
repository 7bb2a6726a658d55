//! Every proxy-wasm host call the filter makes, each returning a `Result`.
//!
//! The SDK's own wrappers (`proxy_wasm::hostcalls`, the `Context` helper methods built on
//! them, its `log` backend) `panic!` on any status they do not expect, and a panic in a Wasm
//! VM takes the plugin down for every request on that worker. So the filter declares the
//! ABI imports it needs here and decides at each call site what a failure means (as a rule:
//! nothing happens, the request passes). The SDK still provides the dispatcher (contexts,
//! callbacks) and the `Action`/`ContextType` types.
//!
//! Statuses are read as plain `u32`s: the host may return a value no Rust enum names.
//!
//! # What can still abort the VM
//!
//! Audited against proxy-wasm 0.2.5 for the callbacks the shipped module exports (`make
//! wasm` keeps only `_initialize`, `proxy_on_memory_allocate`, `proxy_on_vm_start`,
//! `proxy_on_configure`, `proxy_on_tick`, `proxy_on_context_create`,
//! `proxy_on_request_headers`, `proxy_on_response_headers`, `proxy_on_delete`; the SDK's
//! other exports, whose gRPC and HTTP-callout paths `unwrap`, are never entered). What is
//! left is in the SDK and cannot change without forking it:
//!
//! - The dispatcher `panic!`s on a context id it does not know (`invalid context_id`,
//!   `invalid root_context_id`) or already has (`duplicate context_id`). Only a host that
//!   breaks the ABI's context lifecycle gets there; Envoy creates each id once, under a root
//!   it created. Its other panics (`create_http_context returned None`, `missing
//!   ContextType`) the filter rules out: `get_type` names HTTP, `create_http_context` always
//!   returns a context. Its `RefCell`s are borrowed while our callbacks run, so a callback
//!   that re-entered the dispatcher would panic; the filter never calls into the SDK.
//! - `proxy_on_memory_allocate` (the buffer the host fills for a header map, property or the
//!   configuration) panics on a size above `isize::MAX` (2 GiB on wasm32) and aborts when
//!   memory runs out. Envoy caps request headers far below that (`max_request_headers_kb`
//!   ≤ 8 MiB), and out of memory is fatal to the VM whatever the code does. The symbol is
//!   the SDK's `#[no_mangle]` export: a second definition would not link.
//! - Any allocation that fails aborts (Rust's default); with `panic = "abort"` a panic is
//!   the same trap.
//!
//! `_initialize` (the SDK's `main!` macro) runs the constructors and our block, which only
//! installs [`Logger`] (its `Result` handled) and the root context factory.

use std::ptr::null_mut;

/// A proxy-wasm status other than `Ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    pub const NOT_FOUND: Status = Status(1);
}

const OK: u32 = 0;

/// The header maps the filter reads or writes (proxy-wasm `MapType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum HeaderMap {
    Request = 0,
    Response = 2,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        return_value: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        return_value: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
}

/// Declares the ABI imports that write one header and [`HeaderWrite`], their type, from one
/// signature: `map`, then the name and the value as pointer and length.
macro_rules! header_write_imports {
    ($signature:tt; $($name:ident),+) => {
        /// The ABI's header writes (`proxy_add_header_map_value`,
        /// `proxy_replace_header_map_value`): a map, a name and a value.
        type HeaderWrite = unsafe extern "C" fn $signature -> u32;

        #[link(wasm_import_module = "env")]
        extern "C" {
            $(fn $name $signature -> u32;)+
        }
    };
}

header_write_imports!(
    (map: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize);
    proxy_add_header_map_value,
    proxy_replace_header_map_value
);

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn status(code: u32) -> Result<(), Status> {
    if code == OK {
        Ok(())
    } else {
        Err(Status(code))
    }
}

/// Takes ownership of a buffer the host returned. `None` for a null pointer (the host's
/// way of saying "empty").
///
/// # Safety
/// `data` must be null or point to `size` bytes the host obtained from this module's
/// `proxy_on_memory_allocate` (the SDK's allocator: a boxed slice of exactly `size` bytes).
unsafe fn host_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    // SAFETY: guaranteed by the caller; length and capacity are the allocation's size.
    (!data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Calls a host function that returns a buffer through two out-pointers.
fn returned_buffer(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Vec<u8>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    status(call(&mut data, &mut size))?;
    // SAFETY: on `Ok` the host stored a buffer it allocated through
    // `proxy_on_memory_allocate`, or null with size 0 for an empty result.
    Ok(unsafe { host_buffer(data, size) }.unwrap_or_default())
}

/// A log line in Envoy's log (`wasm log <plugin>: ...`).
pub fn log(level: log::Level, message: &str) -> Result<(), Status> {
    // proxy-wasm levels: trace 0, debug 1, info 2, warn 3, error 4.
    let level = match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    };
    // SAFETY: the host reads `message.len()` bytes of a live string for the call only.
    status(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
}

/// The host's wall clock, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> Result<u64, Status> {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 into a local we own.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// The plugin configuration (during `on_configure`); empty when there is none.
pub fn plugin_configuration() -> Result<Vec<u8>, Status> {
    const PLUGIN_CONFIGURATION: u32 = 7;
    // SAFETY: the host writes the two out-pointers (see `returned_buffer`).
    let result = returned_buffer(|data, size| unsafe {
        proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, usize::MAX, data, size)
    });
    match result {
        Err(Status::NOT_FOUND) => Ok(Vec::new()),
        other => other,
    }
}

/// The whole header map in proxy-wasm's serialized form (read by
/// [`crate::request::SerializedRequest`] in place, without copying a header).
pub fn header_map(map: HeaderMap) -> Result<Vec<u8>, Status> {
    // SAFETY: the host writes the two out-pointers (see `returned_buffer`).
    returned_buffer(|data, size| unsafe { proxy_get_header_map_pairs(map as u32, data, size) })
}

/// Whether the map has a header of that name: one lookup in Envoy, cheaper than
/// [`header_map`] when the answer is usually no. Envoy answers `NOT_FOUND` for a missing
/// header; anything else counts as present (the caller then reads the map).
pub fn has_header(map: HeaderMap, name: &str) -> Result<bool, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host reads the live name and writes the two out-pointers.
    let code = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status(code) {
        Ok(()) => {
            // SAFETY: on `Ok` the value came from `proxy_on_memory_allocate` (or is null);
            // taking it back frees it.
            drop(unsafe { host_buffer(data, size) });
            Ok(true)
        }
        Err(Status::NOT_FOUND) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Adds one header line (the map may then hold the name more than once).
pub fn add_header(map: HeaderMap, name: &str, value: &[u8]) -> Result<(), Status> {
    write_header(proxy_add_header_map_value, map, name, value)
}

/// Sets a header to exactly one value, replacing every line of that name.
pub fn replace_header(map: HeaderMap, name: &str, value: &[u8]) -> Result<(), Status> {
    write_header(proxy_replace_header_map_value, map, name, value)
}

fn write_header(call: HeaderWrite, map: HeaderMap, name: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the host reads both live slices for the duration of the call.
    status(unsafe {
        call(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every line of a header.
pub fn remove_header(map: HeaderMap, name: &str) -> Result<(), Status> {
    // SAFETY: the host reads the live name for the duration of the call.
    status(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// An Envoy attribute such as `["source", "address"]`; `Ok(None)` when it is not set.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    // The ABI's path encoding: each segment followed by a NUL.
    let mut encoded = Vec::with_capacity(path.iter().map(|s| s.len() + 1).sum());
    for segment in path {
        encoded.extend_from_slice(segment.as_bytes());
        encoded.push(0);
    }
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host reads the live path and writes the two out-pointers.
    let code = unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    match status(code) {
        // SAFETY: on `Ok` the buffer came from `proxy_on_memory_allocate` (or is null).
        Ok(()) => Ok(unsafe { host_buffer(data, size) }),
        Err(Status::NOT_FOUND) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Kinds of metric (proxy-wasm `MetricType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
}

/// Defines (or finds) a metric by its full name and returns its id.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: the host reads the live name and writes one u32 into a local we own.
    status(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<(), Status> {
    // SAFETY: plain value arguments.
    status(unsafe { proxy_increment_metric(id, by) })
}

/// The value stored under `key` in the host's shared data (one store per VM id, shared by
/// every worker of the Envoy); `Ok(None)` when nothing is.
pub fn shared_data(key: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: the host reads the live key and writes the three out-pointers.
    let code =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status(code) {
        // SAFETY: on `Ok` the buffer came from `proxy_on_memory_allocate` (or is null).
        Ok(()) => Ok(unsafe { host_buffer(data, size) }),
        Err(Status::NOT_FOUND) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Stores `value` under `key` in the host's shared data, whatever was there (no CAS).
pub fn set_shared_data(key: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the host reads both live slices for the duration of the call.
    status(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), 0)
    })
}

/// Sets a gauge.
pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: plain value arguments.
    status(unsafe { proxy_record_metric(id, value) })
}

/// Asks the host to call the root context's `on_tick` every `period_ms` milliseconds;
/// 0 stops the ticks.
pub fn set_tick_period(period_ms: u32) -> Result<(), Status> {
    // SAFETY: a plain value argument.
    status(unsafe { proxy_set_tick_period_milliseconds(period_ms) })
}

/// Fills `buf` from the host's CSPRNG (WASI `random_get`); false if it failed.
pub fn random(buf: &mut [u8]) -> bool {
    // SAFETY: the host writes exactly `buf.len()` bytes into memory we own for the call.
    unsafe { random_get(buf.as_mut_ptr(), buf.len()) == 0 }
}

/// The `log` crate's backend: lines go to Envoy's log; a failing log call is dropped
/// (the SDK's logger unwraps it).
pub struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let _ = log(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}
