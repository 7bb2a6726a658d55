//! `canary-tagger explain` for a sidecar configuration (SPEC §8): what an inbound request
//! is remembered as, or how an outbound call's version is restored — from the engine's own
//! decision ([`sidecar::restore_observed`]).
//!
//! Envoy's trace table lives in the proxy's shared memory, which `explain` cannot see: the
//! `trace` source finds only the entries given with `--remembered ID=VERSION[@AGE_S]`,
//! stored in a table of the configured size exactly as the filter stores them (so two ids
//! that share a slot overwrite each other here too).

use std::collections::HashMap;

use canary_tagger::config::{CompiledConfig, RestoreSource, Sidecar};
use canary_tagger::request::{OwnedRequest, RequestView};
use canary_tagger::sidecar::{
    self, Direction, Lookup, RestoreObserver, SourceOutcome, TraceHeader, TraceKey, TraceTable,
};
use canary_tagger::trace_context;
use serde::Serialize;

use crate::args::{ExplainArgs, UsageError};
use crate::explain::{header_lines, HeaderOut};

/// An entry given with `--remembered`.
pub struct Remembered {
    pub id: String,
    pub version: String,
    pub age_s: u64,
}

/// The sidecar flags: `--direction` and `--remembered`.
pub struct SidecarFlags {
    pub direction: Option<Direction>,
    pub remembered: Vec<Remembered>,
}

pub fn flags_from(parsed: &ExplainArgs) -> Result<SidecarFlags, UsageError> {
    let direction = match parsed.direction.as_deref() {
        None => None,
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some(other) => {
            return Err(UsageError(format!(
                "explain: --direction is inbound or outbound, got {other:?}"
            )))
        }
    };
    let remembered = parsed
        .remembered
        .iter()
        .map(|text| {
            let bad = || {
                UsageError(format!(
                    "explain: --remembered expects TRACE_ID=VERSION or TRACE_ID=VERSION@AGE_S, got {text:?}"
                ))
            };
            let (id, rest) = text.split_once('=').ok_or_else(bad)?;
            let (version, age_s) = match rest.split_once('@') {
                Some((version, age)) => (version, age.parse().map_err(|_| bad())?),
                None => (rest, 0),
            };
            if id.is_empty() || version.is_empty() {
                return Err(bad());
            }
            Ok(Remembered {
                id: id.to_string(),
                version: version.to_string(),
                age_s,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(SidecarFlags {
        direction,
        remembered,
    })
}

/// The time `explain`'s table pretends it is (any fixed value: only ages matter).
const NOW_S: u64 = 1_000_000_000;

/// The entries of `--remembered`, stored as the filter stores them.
struct GivenTable {
    slots: HashMap<u32, Vec<u8>>,
}

impl GivenTable {
    fn new(config: &CompiledConfig, remembered: &[Remembered]) -> GivenTable {
        let mut slots = HashMap::new();
        let Some(sidecar) = config.sidecar() else {
            return GivenTable { slots };
        };
        for entry in remembered {
            // Stored as the filter would for a hex trace id and for an x-request-id (the
            // same key when they hash alike).
            for header in [TraceHeader::TraceParent, TraceHeader::RequestId] {
                let key = TraceKey::new(header, entry.id.as_bytes(), &sidecar.trace_memory);
                let mut buf = [0u8; sidecar::MAX_ENTRY];
                let stamp = NOW_S.saturating_sub(entry.age_s);
                let bytes = sidecar::encode_entry(key, stamp, &entry.version, &mut buf);
                let table = GivenTable { slots };
                let slot = sidecar::slot_to_write(&table, key, &sidecar.trace_memory, NOW_S);
                slots = table.slots;
                slots.insert(slot, bytes.to_vec());
            }
        }
        GivenTable { slots }
    }
}

impl TraceTable for GivenTable {
    fn read_slot<T>(&self, slot: u32, read: impl FnOnce(Option<&[u8]>) -> T) -> T {
        read(self.slots.get(&slot).map(Vec::as_slice))
    }

    fn now_s(&self) -> u64 {
        NOW_S
    }
}

#[derive(Debug, Serialize)]
pub struct SidecarExplanation {
    /// `sidecar` or `waypoint`.
    pub mode: &'static str,
    /// A sidecar's listener direction; a waypoint has none (`null`).
    pub direction: Option<&'static str>,
    pub version: String,
    /// Outbound: `header`, `baggage`, `tracestate`, `trace` or `default`. Inbound: absent.
    /// A waypoint keeping a known tag: `header`.
    pub restored_by: Option<&'static str>,
    /// Outbound: each `restore` source consulted, in order.
    pub sources: Vec<SourceOut>,
    /// Trace ids the request carries (`[header, id]`), in lookup order.
    pub trace_ids: Vec<(String, String)>,
    /// Inbound, or a waypoint's known tag: whether the version is remembered under
    /// `trace_ids`.
    pub remembers: bool,
    pub request_headers: Vec<HeaderOut>,
    pub response_headers: Vec<HeaderOut>,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SourceOut {
    pub source: &'static str,
    pub result: &'static str,
    pub detail: String,
}

#[derive(Default)]
struct Steps {
    sources: Vec<(RestoreSource, SourceOutcome)>,
    lookups: Vec<(TraceHeader, String, Lookup)>,
}

impl RestoreObserver for Steps {
    fn source(&mut self, source: RestoreSource, outcome: SourceOutcome) {
        self.sources.push((source, outcome));
    }

    fn trace_lookup(&mut self, header: TraceHeader, id: &[u8], lookup: Lookup) {
        self.lookups
            .push((header, String::from_utf8_lossy(id).into_owned(), lookup));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const TABLE_NOTE: &str = "explain cannot see Envoy's trace table; give --remembered TRACE_ID=VERSION[@AGE_S] for the entries it holds";

/// What the filter does with `request`: on a sidecar (`direction` given), remember or
/// restore; on a waypoint (`None`), remember a known tag, else restore.
pub fn explain(
    config: &CompiledConfig,
    request: &OwnedRequest,
    flags: &SidecarFlags,
    direction: Option<Direction>,
) -> SidecarExplanation {
    let trace_ids: Vec<(String, String)> = sidecar::trace_ids(request)
        .map(|(header, id)| (header.name().to_string(), text(id)))
        .collect();
    let mut explained = SidecarExplanation {
        mode: config.mode.name(),
        direction: direction.map(Direction::name),
        version: String::new(),
        restored_by: None,
        sources: Vec::new(),
        trace_ids,
        remembers: false,
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        note: None,
    };
    let tagged = sidecar::inbound_version(config, request);
    if direction == Some(Direction::Inbound) || (direction.is_none() && tagged.is_some()) {
        explained.version = tagged
            .map(|v| config.version_name(v).to_string())
            .unwrap_or_default();
        explained.remembers = tagged.is_some() && !explained.trace_ids.is_empty();
        if direction.is_none() {
            explained.restored_by = Some(RestoreSource::Header.name());
        }
        return explained;
    }
    restored(config, request, flags, explained)
}

/// An outbound call, or a waypoint's request without a known tag: the version restored,
/// each source consulted, and the headers set.
fn restored(
    config: &CompiledConfig,
    request: &OwnedRequest,
    flags: &SidecarFlags,
    mut explained: SidecarExplanation,
) -> SidecarExplanation {
    let table = GivenTable::new(config, &flags.remembered);
    let mut steps = Steps::default();
    let restore = sidecar::restore_observed(config, request, &table, &mut steps);
    explained.version = config.version_name(restore.version).to_string();
    explained.restored_by = Some(restore.from.name());
    explained.sources = steps
        .sources
        .iter()
        .map(|&(source, outcome)| SourceOut {
            source: source.name(),
            result: outcome_name(outcome),
            detail: source_detail(config, request, &steps.lookups, source, outcome),
        })
        .collect();
    let consulted_trace = steps
        .sources
        .iter()
        .any(|(source, _)| *source == RestoreSource::Trace);
    if consulted_trace && flags.remembered.is_empty() {
        explained.note = Some(TABLE_NOTE.to_string());
    }
    explained.request_headers = restore
        .request_effects(config, request)
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value(request)),
        })
        .collect();
    explained.response_headers = restore
        .response_effects(config)
        .map(|effect| HeaderOut {
            name: effect.name.to_string(),
            value: text(&effect.value()),
        })
        .collect();
    explained
}

fn outcome_name(outcome: SourceOutcome) -> &'static str {
    match outcome {
        SourceOutcome::Absent => "absent",
        SourceOutcome::NotAVersion => "not_a_version",
        SourceOutcome::NotRemembered => "not_remembered",
        SourceOutcome::Restored(_) => "restored",
    }
}

/// What a `restore` source found in the request (or, for `trace`, in the table).
fn source_detail(
    config: &CompiledConfig,
    request: &OwnedRequest,
    lookups: &[(TraceHeader, String, Lookup)],
    source: RestoreSource,
    outcome: SourceOutcome,
) -> String {
    match (source, outcome) {
        (RestoreSource::Header, SourceOutcome::Absent) => {
            format!("no {} header", config.tag_header)
        }
        (RestoreSource::Header, _) => format!(
            "{}: {}",
            config.tag_header,
            request
                .header_values(&config.tag_header)
                .map(|v| format!("{:?}", text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (RestoreSource::Baggage, SourceOutcome::Absent) => {
            "no canary-version member in baggage".to_string()
        }
        (RestoreSource::Baggage, _) => format!(
            "canary-version={:?}",
            sidecar::baggage_version(request.header_values("baggage"))
                .map(text)
                .unwrap_or_default()
        ),
        (RestoreSource::Tracestate, SourceOutcome::Absent) => {
            "no canary member in tracestate".to_string()
        }
        (RestoreSource::Tracestate, _) => format!(
            "canary={:?}",
            trace_context::version_member(request.header_values(trace_context::TRACESTATE))
                .map(text)
                .unwrap_or_default()
        ),
        (RestoreSource::Trace, SourceOutcome::Absent) => {
            "no traceparent, x-b3-traceid or x-request-id with a well-formed id".to_string()
        }
        (RestoreSource::Trace, _) => trace_lookups_text(config, lookups),
    }
}

/// `traceparent 4bf9...: remembered as v2; x-request-id abc: not remembered`.
fn trace_lookups_text(
    config: &CompiledConfig,
    lookups: &[(TraceHeader, String, Lookup)],
) -> String {
    lookups
        .iter()
        .map(|(header, id, lookup)| {
            let found = match lookup {
                Lookup::NotRemembered => "not remembered".to_string(),
                Lookup::Expired => "remembered, but past ttl_s".to_string(),
                Lookup::NotAVersion => {
                    "remembered as a version this configuration does not have".to_string()
                }
                Lookup::Remembered(v) => format!("remembered as {}", config.version_name(*v)),
            };
            format!("{} {id}: {found}", header.name())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn render_text(config: &CompiledConfig, explained: &SidecarExplanation) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let Some(sidecar) = config.sidecar() else {
        return out;
    };
    let kept = explained.mode == "waypoint"
        && explained.restored_by == Some("header")
        && explained.sources.is_empty();
    if explained.direction == Some("inbound") || kept {
        remembered_lines(&mut line, config, sidecar, explained, kept);
    } else {
        restored_lines(&mut line, explained);
    }
    out
}

/// An inbound request, or a waypoint's with a known tag: what is remembered, under which ids.
fn remembered_lines(
    line: &mut impl FnMut(String),
    config: &CompiledConfig,
    sidecar: &Sidecar,
    explained: &SidecarExplanation,
    kept: bool,
) {
    line(if kept {
        "mode:        waypoint, a request with a known tag (kept)".into()
    } else {
        "mode:        sidecar, inbound request".into()
    });
    if explained.version.is_empty() {
        line(format!(
            "version:     none (no known {} tag: nothing is remembered)",
            config.tag_header
        ));
    } else {
        line(format!(
            "version:     {} (the {} header)",
            explained.version, config.tag_header
        ));
    }
    let ids: Vec<String> = explained
        .trace_ids
        .iter()
        .map(|(header, id)| format!("{header} {id}"))
        .collect();
    if explained.remembers {
        line(format!(
            "remembers:   {} under {} (trace_memory: {} entries, ttl_s {})",
            explained.version,
            ids.join(", "),
            sidecar.trace_memory.entries,
            sidecar.trace_memory.ttl_s
        ));
    } else if ids.is_empty() {
        line("remembers:   nothing (no traceparent, x-b3-traceid or x-request-id; Envoy adds an x-request-id)".into());
    } else {
        line("remembers:   nothing".into());
    }
    line("request headers set: none (the request passes as it is)".into());
}

/// An outbound call, or a waypoint's request without a known tag: how its version was
/// restored, source by source, and the headers set.
fn restored_lines(line: &mut impl FnMut(String), explained: &SidecarExplanation) {
    line(match explained.direction {
        Some(_) => "mode:        sidecar, outbound call".into(),
        None => "mode:        waypoint, a request without a known tag (restored)".into(),
    });
    line(format!("version:     {}", explained.version));
    line(format!(
        "restored by: {}",
        match explained.restored_by {
            Some("default") | None => "default_version (no restore source named a known version)",
            Some(source) => source,
        }
    ));
    line("sources:".into());
    for source in &explained.sources {
        line(format!(
            "  {}: {} ({})",
            source.source,
            source.result.replace('_', " "),
            source.detail
        ));
    }
    if let Some(note) = &explained.note {
        line(format!("note:        {note}"));
    }
    header_lines(
        line,
        &explained.request_headers,
        &[],
        &explained.response_headers,
    );
}
