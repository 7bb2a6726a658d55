//! The ABI floor of tagging a request: the least any proxy-wasm filter that sets a header
//! from what the request carries must do through the ABI.
//!
//! On each request: one `proxy_get_header_map_pairs` (the whole request header map, which
//! Envoy copies into the VM through `proxy_on_memory_allocate`), a scan of it for the tag
//! header, then one write of `x-canary-version: v1` (an add when the request has no such
//! header, as canary-tagger does, else a replace). No decision, no counter, nothing in the
//! response phase (the callback is exported, as in the shipped module, and returns at once).
//!
//! Benchmark code, not a product. It reads the map through the ABI import itself (the SDK's
//! `get_http_request_headers` would turn every pair into two `String`s, more than the job
//! needs) and writes the tag through the SDK's own wrappers of the add and replace imports,
//! as any SDK filter does: they cost one status check more than the bare import.

use proxy_wasm::hostcalls::{add_map_value_bytes, set_map_value_bytes};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot) });
}}

const TAG: &str = "x-canary-version";
const REQUEST_MAP: MapType = MapType::HttpRequestHeaders;
const VERSION: &[u8] = b"v1";

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorRequest))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorRequest;

impl Context for FloorRequest {}

impl HttpContext for FloorRequest {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let map = header_map();
        // Like canary-tagger: an add when the request has no tag header, else a replace.
        // The SDK's wrappers return `Ok` or panic (a failed write aborts the VM), so the
        // result carries nothing to act on.
        let _ = if has_name(&map, TAG.as_bytes()) {
            set_map_value_bytes(REQUEST_MAP, TAG, Some(VERSION))
        } else {
            add_map_value_bytes(REQUEST_MAP, TAG, VERSION)
        };
        Action::Continue
    }
}

/// The serialized request header map (u32 count; count × (u32 name length, u32 value
/// length); then each name and value followed by a NUL), as one buffer.
fn header_map() -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: on success the host hands over a buffer of `size` bytes it allocated through
    // this module's proxy_on_memory_allocate (the SDK's allocator).
    unsafe {
        if proxy_get_header_map_pairs(REQUEST_MAP as u32, &mut data, &mut size) != 0
            || data.is_null()
        {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

/// Whether the serialized map has a header named `name`; a malformed map has none.
fn has_name(map: &[u8], name: &[u8]) -> bool {
    let word = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(map.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let Some(count) = word(0) else { return false };
    let mut data_at = 4 + count.saturating_mul(8);
    for i in 0..count {
        let (Some(name_len), Some(value_len)) = (word(4 + 8 * i), word(8 + 8 * i)) else {
            return false;
        };
        if map.get(data_at..data_at.saturating_add(name_len)) == Some(name) {
            return true;
        }
        data_at = data_at
            .saturating_add(name_len)
            .saturating_add(value_len)
            .saturating_add(2);
    }
    false
}
