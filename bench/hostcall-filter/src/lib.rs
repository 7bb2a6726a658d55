//! Prices proxy-wasm host calls (see Cargo.toml). The plugin configuration is a
//! whitespace-separated list of operations, run in order on every request:
//!
//! - `map`: read the whole request header map (`proxy_get_header_map_pairs`)
//! - `get:NAME`: read one request header (`proxy_get_header_map_value`)
//! - `add:NAME` / `replace:NAME`: write request header NAME = `v1`
//! - `counter`: increment a counter
//! - `property:A.B`: read an Envoy attribute such as `source.address`
//!
//! Benchmark code: it uses the SDK's hostcalls as they are (they panic on an unexpected
//! status, which a benchmark may).

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { ops: Rc::new(Vec::new()), counter: 0 })
    });
}}

enum Op {
    Map,
    Get(String),
    Add(String),
    Replace(String),
    Counter,
    Property(Vec<String>),
}

struct Root {
    ops: Rc<Vec<Op>>,
    counter: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let mut ops = Vec::new();
        for word in String::from_utf8_lossy(&config).split_whitespace() {
            let (kind, arg) = word.split_once(':').unwrap_or((word, ""));
            ops.push(match kind {
                "map" => Op::Map,
                "get" => Op::Get(arg.to_string()),
                "add" => Op::Add(arg.to_string()),
                "replace" => Op::Replace(arg.to_string()),
                "counter" => Op::Counter,
                "property" => Op::Property(arg.split('.').map(String::from).collect()),
                _ => return false,
            });
        }
        self.ops = Rc::new(ops);
        self.counter = hostcalls::define_metric(MetricType::Counter, "hostcall_filter").unwrap_or(0);
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { ops: Rc::clone(&self.ops), counter: self.counter }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    ops: Rc<Vec<Op>>,
    counter: u32,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        for op in self.ops.iter() {
            match op {
                Op::Map => drop(std::hint::black_box(header_map())),
                Op::Get(name) => drop(std::hint::black_box(
                    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name),
                )),
                Op::Add(name) => drop(hostcalls::add_map_value(MapType::HttpRequestHeaders, name, "v1")),
                Op::Replace(name) => {
                    drop(hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some("v1")))
                }
                Op::Counter => drop(hostcalls::increment_metric(self.counter, 1)),
                Op::Property(path) => drop(std::hint::black_box(hostcalls::get_property(
                    path.iter().map(String::as_str).collect(),
                ))),
            }
        }
        Action::Continue
    }
}

/// The serialized map as one buffer, as canary-tagger reads it (the SDK's getter would
/// also split it into Strings, which is not what is being priced).
fn header_map() -> Vec<u8> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: on success the host hands over a buffer of `size` bytes it allocated through
    // this module's proxy_on_memory_allocate.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut size) != 0 || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}
