//! The proxy-wasm shell: reads the request from Envoy, asks the engine, writes the answer.
//! Built only for `wasm32-wasip1`; every decision lives in the engine, the headers written
//! are exactly the decision's [effects](crate::effects) (the same list `explain` shows), and
//! every host call goes through [`crate::host`], which returns a `Result` instead of
//! panicking.

use std::cell::Cell;
use std::rc::Rc;

use log::{error, info};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::config::{
    CompiledConfig, Mode as ConfigMode, ProcessEnvironment, RestoreSource, VersionId,
};
use crate::effects::{AddHeader, HeaderWriter};
use crate::engine::{self, ClientTag, DecidedBy, Decision};
use crate::host::{self, HeaderMap, MetricType};
use crate::metrics::{self, MetricNames, SidecarMetricNames};
use crate::net::ClientIpSource;
use crate::ramp::UnixSeconds;
use crate::request::SerializedRequest;
use crate::sidecar::{self, Direction, Restore, RestoredFrom, SlotKey, TraceKey, TraceTable};

proxy_wasm::main! {{
    // Our own `log` backend: the SDK's (`proxy_wasm::set_log_level`) unwraps a failed
    // log call.
    if log::set_logger(&host::Logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(CanaryRoot { context_id, mode: None, random: Rc::new(Random::default()) })
    });
}}
/// Counter ids of gateway mode, defined once per accepted configuration.
struct Counters {
    /// `[decided_by slot][version]`; slot = rule index, then default, then trusted tag.
    decisions: Vec<Vec<Option<u32>>>,
    normalized: Vec<Option<u32>>,
    client_tag_stripped: Option<u32>,
    sticky_id_issued: Option<u32>,
    sticky_id_rejected: Option<u32>,
    client_ip_fallback: Option<u32>,
    /// `(rule index, gauge)` per ramped split: `canary_tagger_ramp_percent`.
    ramp_percent: Vec<(usize, u32)>,
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
            // Only where ids are signed: nothing else can reject one.
            sticky_id_rejected: config
                .sticky_cookie
                .as_ref()
                .and_then(|sticky| sticky.signing.as_ref())
                .and_then(|_| counter(metrics::STICKY_ID_REJECTED)),
            client_ip_fallback: counter(metrics::CLIENT_IP_FALLBACK),
            ramp_percent: names
                .ramp_percent
                .into_iter()
                .filter_map(|(rule, name)| {
                    let gauge = host::define_metric(MetricType::Gauge, &name).ok()?;
                    Some((rule, gauge))
                })
                .collect(),
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
    host::define_metric(MetricType::Counter, name).ok()
}

/// A counter that could not be defined, or a failed increment, is not counted.
fn increment(metric: Option<u32>) {
    if let Some(id) = metric {
        let _ = host::increment_metric(id, 1);
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
        if host::random(&mut seed) {
            self.state.set(u64::from_le_bytes(seed));
        } else {
            self.state.set(host::now_nanos().unwrap_or(0));
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

/// The configuration every request of this plugin instance decides with, and the counters
/// of its mode.
struct Active<C> {
    config: CompiledConfig,
    counters: C,
}

/// What an accepted configuration makes of the plugin instance: decided once, in
/// `on_configure`, so that a request never asks again (SPEC §8, §12: decide, or restore).
enum Mode {
    Gateway(Rc<Active<Counters>>),
    /// `"mode": "sidecar"` or `"waypoint"` (the configuration says which).
    Sidecar(Rc<Active<SidecarCounters>>),
}

impl Mode {
    fn new(config: CompiledConfig) -> Mode {
        match config.sidecar() {
            None => Mode::Gateway(Rc::new(Active {
                counters: Counters::define(&config),
                config,
            })),
            Some(_) => Mode::Sidecar(Rc::new(Active {
                counters: SidecarCounters::define(&config),
                config,
            })),
        }
    }

    fn config(&self) -> &CompiledConfig {
        match self {
            Mode::Gateway(active) => &active.config,
            Mode::Sidecar(active) => &active.config,
        }
    }

    /// Moves the ramps to `now` and sets their gauges (whole percent, rounded down).
    fn set_time(&self, now: UnixSeconds) {
        self.config().set_time(now);
        let Mode::Gateway(active) = self else {
            return;
        };
        let gauges = &active.counters.ramp_percent;
        for (rule, split) in active.config.ramped_splits() {
            if let Some(&(_, gauge)) = gauges.iter().find(|(index, _)| *index == rule) {
                let _ = host::record_metric(gauge, u64::from(split.first_buckets() / 100));
            }
        }
    }

    /// Whether a ramp still has to move after `now`.
    fn ramping_after(&self, now: UnixSeconds) -> bool {
        self.config().last_ramp_end().is_some_and(|end| now < end)
    }
}

/// The host's wall clock in whole seconds since the Unix epoch (SPEC §9: read at most once
/// a second, in the root context; never per request).
fn wall_clock_seconds() -> Option<UnixSeconds> {
    let nanos = host::now_nanos().ok()?;
    UnixSeconds::try_from(nanos / 1_000_000_000).ok()
}

/// How often a ramp's ranges move.
const RAMP_TICK_MS: u32 = 1000;

struct CanaryRoot {
    context_id: u32,
    mode: Option<Mode>,
    random: Rc<Random>,
}

impl CanaryRoot {
    /// Ticks once a second while a ramp of the active configuration moves, else not at all.
    fn tick_while_ramping(&self, now: Option<UnixSeconds>) {
        let ramping = match (&self.mode, now) {
            (Some(mode), Some(now)) => mode.ramping_after(now),
            // Without a clock a ramp cannot move; ask again in a second.
            (Some(mode), None) => mode.config().last_ramp_end().is_some(),
            (None, _) => false,
        };
        let period = if ramping { RAMP_TICK_MS } else { 0 };
        if host::set_tick_period(period).is_err() && ramping {
            error!(
                "#{} canary-tagger cannot set a tick: ramps stay at their current weights",
                self.context_id
            );
        }
    }
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
        let json = host::plugin_configuration().unwrap_or_default();
        // The signing keys of `sticky_cookie.signing` come from the VM's environment
        // (`vm_config.environment_variables`), never from the plugin configuration.
        match CompiledConfig::from_json_in(&json, &ProcessEnvironment) {
            Ok(config) => {
                // Defined (at 0) on success too, so `increase()` sees the first rejection.
                let _ = counter(metrics::CONFIG_REJECTED);
                info!(
                    "#{} canary-tagger configured: {} versions, {} rules, {} normalizations",
                    self.context_id,
                    config.versions().len(),
                    config.rules.len(),
                    config.normalize.len()
                );
                // Which key signs, for an operator checking a rotation; key ids only.
                if let Some(keys) = config
                    .sticky_cookie
                    .as_ref()
                    .and_then(|s| s.signing.as_ref())
                {
                    info!(
                        "#{} canary-tagger sticky ids signed with key {:?} of {} (from {})",
                        self.context_id,
                        keys.kids().next().unwrap_or_default(),
                        keys.kids().count(),
                        keys.keys_env()
                    );
                }
                let mode = Mode::new(config);
                // The ranges of this second, so that the first request is decided right
                // (no clock read for a configuration without ramps).
                let ramps = mode.config().last_ramp_end().is_some();
                let now = if ramps { wall_clock_seconds() } else { None };
                if let Some(now) = now {
                    mode.set_time(now);
                }
                self.mode = Some(mode);
                self.tick_while_ramping(now);
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

    /// Once a second while a ramp moves: the one place the filter reads the clock for it.
    fn on_tick(&mut self) {
        let now = wall_clock_seconds();
        if let (Some(mode), Some(now)) = (&self.mode, now) {
            mode.set_time(now);
        }
        if !self
            .mode
            .as_ref()
            .zip(now)
            .is_some_and(|(mode, now)| mode.ramping_after(now))
        {
            self.tick_while_ramping(now);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Never `None` (the SDK's dispatcher panics on it): without an accepted configuration
    /// a request passes untouched.
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match &self.mode {
            Some(Mode::Sidecar(active)) => Box::new(SidecarRequest {
                active: Rc::clone(active),
                restored: None,
            }),
            Some(Mode::Gateway(active)) => Box::new(CanaryRequest {
                active: Rc::clone(active),
                random: Rc::clone(&self.random),
                decision: None,
            }),
            None => Box::new(PassThrough),
        })
    }
}

struct CanaryRequest {
    active: Rc<Active<Counters>>,
    random: Rc<Random>,
    /// The request phase's decision, for the response phase.
    decision: Option<Decision>,
}

impl Context for CanaryRequest {}

impl HttpContext for CanaryRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let active = Rc::clone(&self.active);
        let config = &active.config;
        // When the config can consult only a few headers and the request has none of them,
        // an empty map decides the same (tests/properties.rs proves it) for a lookup per
        // name instead of copying the whole map out of Envoy. An unreadable map reads as no
        // headers: the request still gets a decision.
        let absent = |name: &Option<&str>| {
            name.is_none_or(|name| host::has_header(HeaderMap::Request, name) == Ok(false))
        };
        let map = match engine::probe_headers(config) {
            Some(names) if names.iter().all(absent) => Vec::new(),
            _ => host::header_map(HeaderMap::Request).unwrap_or_default(),
        };
        let request = SerializedRequest::new(map, || {
            host::property(&["source", "address"]).ok().flatten()
        });
        let decision = engine::decide(config, &request, self.random.next_u128());

        // Envoy picked a route before this filter ran. Every request-header write through
        // the proxy-wasm ABI makes Envoy clear its route cache, so the router matches again
        // on the new tag; the e2e tables prove it.
        for effect in decision.request_effects(config, &request) {
            effect.apply(&request, &mut HostHeaders(HeaderMap::Request));
        }

        let counters = &active.counters;
        for index in decision.normalized.iter() {
            increment(counters.normalized.get(index).copied().flatten());
        }
        // One count per request whose client-chosen version went, in the tag header, a
        // `baggage` or a `tracestate` member (SPEC §7, §12).
        if [
            decision.client_tag,
            decision.client_baggage,
            decision.client_tracestate,
        ]
        .contains(&ClientTag::Stripped)
        {
            increment(counters.client_tag_stripped);
        }
        if decision.client_ip_source == ClientIpSource::PeerAfterXffFallback {
            increment(counters.client_ip_fallback);
        }
        increment(counters.decision(config, decision.decided_by, decision.version));
        if decision.sticky_id.is_some() {
            increment(counters.sticky_id_issued);
        }
        if decision.sticky_rejected.is_some() {
            increment(counters.sticky_id_rejected);
        }
        self.decision = Some(decision);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let config = &self.active.config;
        add_to_response(
            self.decision
                .as_ref()
                .map(|decision| decision.response_effects(config)),
        )
    }
}

/// Adds a request's response headers (either mode's `response_effects`, none when the
/// request phase decided nothing) to the response, which then goes on.
#[inline]
fn add_to_response<'a>(effects: Option<impl Iterator<Item = AddHeader<'a>>>) -> Action {
    if let Some(effects) = effects {
        for effect in effects {
            effect.apply(&mut HostHeaders(HeaderMap::Response));
        }
    }
    Action::Continue
}

/// The host's header maps as the effects' writer. A failed write leaves the header as it
/// was: the request or response passes as it is.
struct HostHeaders(HeaderMap);

impl HeaderWriter for HostHeaders {
    fn add(&mut self, name: &str, value: &[u8]) {
        let _ = host::add_header(self.0, name, value);
    }

    fn replace(&mut self, name: &str, value: &[u8]) {
        let _ = host::replace_header(self.0, name, value);
    }

    fn remove(&mut self, name: &str) {
        let _ = host::remove_header(self.0, name);
    }
}

/// The HTTP context of a plugin instance without an accepted configuration: every callback
/// keeps the SDK's default, `Continue`, and touches nothing.
struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {}

// ---------------------------------------------------------------------------- sidecar mode

/// Counter ids of sidecar mode (SPEC §8).
struct SidecarCounters {
    /// `[source][version]`, source = `RestoreSource::index`, then the default.
    restored: Vec<Vec<Option<u32>>>,
    remembered: Vec<Option<u32>>,
    trace_misses: Option<u32>,
    direction_unspecified: Option<u32>,
}

impl SidecarCounters {
    fn define(config: &CompiledConfig) -> SidecarCounters {
        let names = SidecarMetricNames::new(config);
        SidecarCounters {
            restored: names
                .restored
                .into_iter()
                .map(|per_version| {
                    per_version
                        .into_iter()
                        .map(|name| name.and_then(|n| counter(&n)))
                        .collect()
                })
                .collect(),
            remembered: names.remembered.iter().map(|n| counter(n)).collect(),
            trace_misses: counter(metrics::TRACE_MISSES),
            // Defined in waypoint mode too, where it stays 0: a waypoint never asks.
            direction_unspecified: counter(metrics::DIRECTION_UNSPECIFIED),
        }
    }

    fn restored(&self, restore: &Restore) -> Option<u32> {
        let slot = match restore.from {
            RestoredFrom::Source(source) => source.index(),
            RestoredFrom::Default => RestoreSource::ALL.len(),
        };
        self.restored
            .get(slot)?
            .get(restore.version.index())
            .copied()
            .flatten()
    }
}

/// The host clock in whole seconds; 0 when it cannot be read (every entry then counts as
/// fresh: a wrong version is worse than none only after `ttl_s`, and reads rarely fail).
fn now_s() -> u64 {
    host::now_nanos().map_or(0, |nanos| nanos / 1_000_000_000)
}

/// The direction of the listener this request came through. Read per request: the filters
/// of an inbound and an outbound listener with the same configuration may share one root
/// context, and Envoy serves the property only to HTTP contexts (from the filter's plugin).
/// Envoy 1.40 names it `xds.listener_direction`; older Envoys `listener_direction`.
fn listener_direction() -> Direction {
    let value = match host::property(&["xds", "listener_direction"]) {
        Ok(None) => host::property(&["listener_direction"]),
        found => found,
    };
    Direction::from_property(value.ok().flatten().as_deref())
}

/// The trace table in the host's shared data: one key per slot ([`SlotKey`]).
struct SharedTraceTable;

impl TraceTable for SharedTraceTable {
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T {
        match host::shared_data(SlotKey::new(slot).as_str()) {
            Ok(Some(entry)) => read(Some(&entry)),
            _ => read(None),
        }
    }

    fn now_s(&self) -> u64 {
        now_s()
    }
}

/// A request through a sidecar: inbound, its version is remembered by trace id; outbound,
/// the tag is restored (crate::sidecar). Through a waypoint: a known tag is remembered,
/// else the tag is restored.
struct SidecarRequest {
    active: Rc<Active<SidecarCounters>>,
    /// The outbound decision, for the response phase.
    restored: Option<Restore>,
}

impl Context for SidecarRequest {}

impl SidecarRequest {
    /// Remembers `version` under every trace id `request` carries.
    fn remember(&self, version: VersionId, request: &SerializedRequest) {
        let Active { config, counters } = &*self.active;
        let Some(sidecar) = config.sidecar() else {
            return;
        };
        let name = config.version_name(version);
        let mut now = None;
        let mut remembered = false;
        for (header, id) in sidecar::trace_ids(request) {
            let key = TraceKey::new(header, id, &sidecar.trace_memory);
            let now = *now.get_or_insert_with(now_s);
            let slot = sidecar::slot_to_write(&SharedTraceTable, key, &sidecar.trace_memory, now);
            let mut buf = [0u8; sidecar::MAX_ENTRY];
            let entry = sidecar::encode_entry(key, now, name, &mut buf);
            remembered |= host::set_shared_data(SlotKey::new(slot).as_str(), entry).is_ok();
        }
        if remembered {
            increment(counters.remembered.get(version.index()).copied().flatten());
        }
    }
}

impl HttpContext for SidecarRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let active = Rc::clone(&self.active);
        let Active { config, counters } = &*active;
        // A sidecar's listener says which hop this is; a waypoint serves every hop and its
        // listeners say nothing (SPEC §12): it never asks (`None`).
        let direction = match config.mode {
            ConfigMode::Waypoint(_) => None,
            _ => match listener_direction() {
                Direction::Unspecified => {
                    increment(counters.direction_unspecified);
                    return Action::Continue;
                }
                direction => Some(direction),
            },
        };
        // Sidecar and waypoint mode never read the peer address.
        let request = SerializedRequest::new(
            host::header_map(HeaderMap::Request).unwrap_or_default(),
            || None,
        );
        if direction != Some(Direction::Outbound) {
            // A sidecar's inbound request, or a waypoint's with a known tag: left as it
            // is, and its version remembered for the hops after this one.
            let tagged = sidecar::inbound_version(config, &request);
            if let Some(version) = tagged {
                self.remember(version, &request);
            }
            match (direction, tagged) {
                (Some(_), _) => return Action::Continue,
                (None, Some(version)) => {
                    let kept = Restore::kept(version);
                    increment(counters.restored(&kept));
                    self.restored = Some(kept);
                    return Action::Continue;
                }
                (None, None) => {}
            }
        }
        let restore = sidecar::restore(config, &request, &SharedTraceTable);
        // As in gateway mode, a request-header write makes Envoy match the route again.
        for effect in restore.request_effects(config, &request) {
            effect.apply(&request, &mut HostHeaders(HeaderMap::Request));
        }
        increment(counters.restored(&restore));
        if restore.trace_missed {
            increment(counters.trace_misses);
        }
        self.restored = Some(restore);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let config = &self.active.config;
        add_to_response(
            self.restored
                .as_ref()
                .map(|restore| restore.response_effects(config)),
        )
    }
}
