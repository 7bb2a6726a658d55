//! Empty proxy-wasm HTTP filter: the benchmark floor.
//!
//! Creates one HTTP context per request (as every proxy-wasm filter must) and returns
//! `Continue` from every callback without reading or writing a header. Any Rust proxy-wasm
//! filter pays at least this much; canary-tagger is measured against it in `bench/run.sh`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(EmptyRoot) });
}}

struct EmptyRoot;

impl Context for EmptyRoot {}

impl RootContext for EmptyRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EmptyHttp))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct EmptyHttp;

impl Context for EmptyHttp {}

// Every callback keeps the SDK's default: `Action::Continue`.
impl HttpContext for EmptyHttp {}
