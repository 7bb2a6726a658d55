//! canary-tagger: decides at the edge which version of a service a request belongs to and
//! tags it, so that plain Istio `VirtualService` header matches route every hop of it.
//!
//! The engine (`config`, `engine`, `effects`, `matcher`, `hash`, `http`, `net`, `ramp`, `request`)
//! is plain Rust that knows nothing of Envoy; `filter` is the thin proxy-wasm shell, built
//! only for wasm.

pub mod baggage;
pub mod config;
pub mod effects;
pub mod engine;
pub mod hash;
pub mod http;
pub mod matcher;
pub mod members;
pub mod metrics;
pub mod net;
pub mod ramp;
pub mod request;
pub mod sidecar;
pub mod signing;
pub mod trace_context;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod filter;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod host;

#[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
pub mod schema;
