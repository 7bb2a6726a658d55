//! The proxy-wasm shell: reads the request from Envoy, asks the engine, writes the answer.
//! Built only for `wasm32-wasip1`; every decision lives in the engine.

use std::cell::Cell;
use std::rc::Rc;

use log::{error, info};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::config::{CompiledConfig, VersionId};
use crate::engine::{self, ClientTag, DecidedBy, StickyId};
use crate::metrics::{self, MetricNames};
use crate::net::ClientIpSource;
use crate::request::{RequestView, SerializedRequest};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(CanaryRoot { context_id, active: None, random: Rc::new(Random::default()) })
    });
}}

/// Counter ids, defined once per accepted configuration.
struct Counters {
    /// `[decided_by slot][version]`; slot = rule index, then default, then trusted tag.
    decisions: Vec<Vec<Option<u32>>>,
    normalized: Vec<Option<u32>>,
    client_tag_stripped: Option<u32>,
    sticky_id_issued: Option<u32>,
    client_ip_fallback: Option<u32>,
}

impl Counters {
    fn define(config: &CompiledConfig) -> Counters {
        let names = MetricNames::new(config);
        let define = |name: Option<String>| name.and_then(|n| counter(&n));
        Counters {
            decisions: names
                .decisions
                .into_iter()
                .map(|per_version| per_version.into_iter().map(define).collect())
                .collect(),
            normalized: names.normalized.into_iter().map(|n| counter(&n)).collect(),
            client_tag_stripped: counter(metrics::CLIENT_TAG_STRIPPED),
            sticky_id_issued: counter(metrics::STICKY_ID_ISSUED),
            client_ip_fallback: counter(metrics::CLIENT_IP_FALLBACK),
        }
    }

    fn decision(
        &self,
        config: &CompiledConfig,
        decided_by: DecidedBy,
        version: VersionId,
    ) -> Option<u32> {
        let slot = match decided_by {
            DecidedBy::Rule(index) => index,
            DecidedBy::Default => config.rules.len(),
            DecidedBy::TrustedClientTag => config.rules.len() + 1,
        };
        self.decisions
            .get(slot)?
            .get(version.index())
            .copied()
            .flatten()
    }
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn increment(metric: Option<u32>) {
    if let Some(id) = metric {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// Random numbers for sticky ids: seeded from the host's CSPRNG (WASI `random_get`) once,
/// then SplitMix64, so a request costs no host call.
#[derive(Default)]
struct Random {
    state: Cell<u64>,
}

impl Random {
    fn reseed(&self) {
        let mut seed = [0u8; 8];
        if wasi_random(&mut seed) {
            self.state.set(u64::from_le_bytes(seed));
        } else {
            let now = hostcalls::get_current_time()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            self.state
                .set(u64::try_from(now & u128::from(u64::MAX)).unwrap_or(0));
        }
    }

    fn next_u64(&self) -> u64 {
        let state = self.state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.state.set(state);
        crate::hash::fmix64(state)
    }

    fn next_u128(&self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
}

fn wasi_random(buf: &mut [u8]) -> bool {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> u16;
    }
    // SAFETY: the host writes exactly `buf.len()` bytes into memory we own for the call.
    unsafe { random_get(buf.as_mut_ptr(), buf.len()) == 0 }
}

/// The request header map in proxy-wasm's serialized form, as one buffer. The SDK's own
/// getters copy every name and value into a new String/Vec (about twenty allocations per
/// request) and panic on an unexpected status; this keeps the buffer and reads it in
/// place ([`SerializedRequest`]). An unavailable map reads as no headers.
fn request_header_map() -> Vec<u8> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: u32,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
    }
    const REQUEST_HEADERS: u32 = 0;
    const OK: u32 = 0;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: on success the host stores a buffer of `size` bytes that it obtained from
    // this module's `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes), so
    // taking ownership as a Vec with length and capacity `size` frees it correctly.
    unsafe {
        if proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) != OK || data.is_null()
        {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

/// The configuration every request of this plugin instance decides with.
struct Active {
    config: CompiledConfig,
    counters: Counters,
}

struct CanaryRoot {
    context_id: u32,
    active: Option<Rc<Active>>,
    random: Rc<Random>,
}

impl Context for CanaryRoot {}

impl RootContext for CanaryRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        info!(
            "#{} canary-tagger {} starting",
            self.context_id,
            env!("CARGO_PKG_VERSION")
        );
        self.random.reseed();
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let json = self.get_plugin_configuration().unwrap_or_default();
        match CompiledConfig::from_json(&json) {
            Ok(config) => {
                // Defined (at 0) on success too, so `increase()` sees the first rejection.
                let _ = counter(metrics::CONFIG_REJECTED);
                let counters = Counters::define(&config);
                info!(
                    "#{} canary-tagger configured: {} versions, {} rules, {} normalizations",
                    self.context_id,
                    config.versions().len(),
                    config.rules.len(),
                    config.normalize.len()
                );
                self.active = Some(Rc::new(Active { config, counters }));
                true
            }
            Err(errors) => {
                increment(counter(metrics::CONFIG_REJECTED));
                // One line naming each JSON path and reason; never the raw values.
                error!(
                    "#{} canary-tagger configuration rejected: {errors}",
                    self.context_id
                );
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let active = self.active.clone()?;
        Some(Box::new(CanaryRequest {
            active,
            random: self.random.clone(),
            tagged: None,
        }))
    }
}

/// What the response phase needs from the request phase.
struct Tagged {
    version: VersionId,
    sticky_id: Option<StickyId>,
}

struct CanaryRequest {
    active: Rc<Active>,
    random: Rc<Random>,
    tagged: Option<Tagged>,
}

impl Context for CanaryRequest {}

impl HttpContext for CanaryRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let request = SerializedRequest::new(request_header_map(), || {
            hostcalls::get_property(vec!["source", "address"])
                .ok()
                .flatten()
        });
        let active = Rc::clone(&self.active);
        let config = &active.config;
        let decision = engine::decide(config, &request, self.random.next_u128());
        let version = config.version_name(decision.version);

        for index in decision.normalized.iter() {
            if let Some(entry) = config.normalize.get(index) {
                self.set_http_request_header(&entry.header, Some(&entry.default));
                increment(active.counters.normalized.get(index).copied().flatten());
            }
        }
        if decision.client_tag == ClientTag::Stripped {
            increment(active.counters.client_tag_stripped);
        }
        if decision.client_ip_source == ClientIpSource::PeerAfterXffFallback {
            increment(active.counters.client_ip_fallback);
        }
        // Envoy picked a route before this filter ran. Every request-header write through
        // the proxy-wasm ABI makes Envoy clear its route cache (Context::*HeaderMapValue),
        // so the router matches again on the new tag; the e2e tables prove it.
        self.set_http_request_header(&config.tag_header, Some(version));
        if config.baggage {
            let baggage = crate::baggage::with_version(request.header_values("baggage"), version);
            self.set_http_request_header_bytes("baggage", Some(&baggage));
        }
        increment(
            active
                .counters
                .decision(config, decision.decided_by, decision.version),
        );
        if decision.sticky_id.is_some() {
            increment(active.counters.sticky_id_issued);
        }
        self.tagged = Some(Tagged {
            version: decision.version,
            sticky_id: decision.sticky_id,
        });
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(tagged) = &self.tagged else {
            return Action::Continue;
        };
        let config = &self.active.config;
        if let (Some(id), Some(sticky)) = (&tagged.sticky_id, &config.sticky_cookie) {
            self.add_http_response_header("set-cookie", &sticky.set_cookie(id.as_str()));
        }
        if let Some(header) = &config.response_header {
            self.add_http_response_header(header, config.version_name(tagged.version));
        }
        Action::Continue
    }
}
