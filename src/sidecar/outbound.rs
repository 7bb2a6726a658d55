//! An outbound call's version (SPEC §8): the first `restore` source that yields a known
//! version, else `default_version`, each step reported to a [`RestoreObserver`].

use super::{decode_entry, lookup, trace_ids, Lookup, TraceHeader, TraceKey, TraceTable};
use crate::baggage;
use crate::config::{CompiledConfig, RestoreSource, Sidecar, VersionId};
use crate::request::RequestView;
use crate::trace_context;

/// What one `restore` source yielded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceOutcome {
    /// Nothing to read: no tag header, no `canary-version` member, no trace id.
    Absent,
    /// A value naming no known version (or a tag header sent more than once): ignored.
    NotAVersion,
    /// Trace ids, none of them remembered (live) in the table.
    NotRemembered,
    Restored(VersionId),
}

/// Where an outbound call's version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoredFrom {
    Source(RestoreSource),
    /// No source yielded a known version.
    Default,
}

impl RestoredFrom {
    /// The metric label and `explain` word: a source's name, or `default`.
    pub fn name(self) -> &'static str {
        match self {
            RestoredFrom::Source(source) => source.name(),
            RestoredFrom::Default => "default",
        }
    }
}

/// An outbound call's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restore {
    pub version: VersionId,
    pub from: RestoredFrom,
    /// The header whose trace id was found, when `from` is the trace.
    pub trace_header: Option<TraceHeader>,
    /// The trace source was consulted, the call carried trace ids, and none was remembered.
    pub trace_missed: bool,
}

impl Restore {
    /// A waypoint's decision for a request that arrived with a known tag (SPEC §12): kept,
    /// counted as the `header` source.
    pub fn kept(version: VersionId) -> Restore {
        Restore {
            version,
            from: RestoredFrom::Source(RestoreSource::Header),
            trace_header: None,
            trace_missed: false,
        }
    }
}

/// Watches [`restore_observed`]: each source consulted, in order, and each trace id looked
/// up. Nothing by default; `explain` records them.
pub trait RestoreObserver {
    #[inline]
    fn source(&mut self, _source: RestoreSource, _outcome: SourceOutcome) {}

    #[inline]
    fn trace_lookup(&mut self, _header: TraceHeader, _id: &[u8], _lookup: Lookup) {}
}

/// The observer that sees nothing.
pub struct Unobserved;

impl RestoreObserver for Unobserved {}

/// The version of an outbound call (SPEC §8).
#[inline]
pub fn restore<R: RequestView, T: TraceTable>(
    config: &CompiledConfig,
    request: &R,
    table: &T,
) -> Restore {
    restore_observed(config, request, table, &mut Unobserved)
}

/// [`restore`], reporting each step to `observer`.
pub fn restore_observed<R: RequestView, T: TraceTable, O: RestoreObserver>(
    config: &CompiledConfig,
    request: &R,
    table: &T,
    observer: &mut O,
) -> Restore {
    let mut restored = Restore {
        version: config.default_version,
        from: RestoredFrom::Default,
        trace_header: None,
        trace_missed: false,
    };
    let Some(sidecar) = config.sidecar() else {
        return restored;
    };
    for &source in &sidecar.restore {
        let outcome = match source {
            RestoreSource::Header => match inbound_version_or_repeat(config, request) {
                TagValue::Absent => SourceOutcome::Absent,
                TagValue::Known(version) => SourceOutcome::Restored(version),
                TagValue::Other => SourceOutcome::NotAVersion,
            },
            RestoreSource::Baggage => named(
                config,
                baggage_version(request.header_values(baggage::HEADER)),
            ),
            RestoreSource::Tracestate => named(
                config,
                trace_context::version_member(request.header_values(trace_context::TRACESTATE)),
            ),
            RestoreSource::Trace => {
                let (outcome, header) = remembered(config, sidecar, request, table, observer);
                restored.trace_missed = outcome == SourceOutcome::NotRemembered;
                restored.trace_header = header;
                outcome
            }
        };
        observer.source(source, outcome);
        if let SourceOutcome::Restored(version) = outcome {
            restored.version = version;
            restored.from = RestoredFrom::Source(source);
            return restored;
        }
    }
    restored
}

/// A carried value: absent, a known version, or not one.
fn named(config: &CompiledConfig, value: Option<&[u8]>) -> SourceOutcome {
    match value {
        None => SourceOutcome::Absent,
        Some(value) => match config.version_named(value) {
            Some(version) => SourceOutcome::Restored(version),
            None => SourceOutcome::NotAVersion,
        },
    }
}

/// The `trace` source: the first of the request's trace ids remembered (live) in the table,
/// and the header it came from.
fn remembered<R: RequestView, T: TraceTable, O: RestoreObserver>(
    config: &CompiledConfig,
    sidecar: &Sidecar,
    request: &R,
    table: &T,
    observer: &mut O,
) -> (SourceOutcome, Option<TraceHeader>) {
    let mut now_s = None;
    let mut outcome = SourceOutcome::Absent;
    for (header, id) in trace_ids(request) {
        let key = TraceKey::new(header, id, &sidecar.trace_memory);
        let mut found = Lookup::NotRemembered;
        for slot in key.candidates() {
            found = table.read_slot(slot, |entry| {
                // The clock only for a slot that holds this trace.
                let now = match entry.and_then(decode_entry) {
                    Some((check, _, _)) if check == key.check => {
                        *now_s.get_or_insert_with(|| table.now_s())
                    }
                    _ => 0,
                };
                lookup(config, &sidecar.trace_memory, key, entry, now)
            });
            if found != Lookup::NotRemembered {
                break;
            }
        }
        observer.trace_lookup(header, id, found);
        if let Lookup::Remembered(version) = found {
            return (SourceOutcome::Restored(version), Some(header));
        }
        outcome = SourceOutcome::NotRemembered;
    }
    (outcome, None)
}

enum TagValue {
    Absent,
    Known(VersionId),
    /// Unknown, or sent more than once.
    Other,
}

fn inbound_version_or_repeat<R: RequestView>(config: &CompiledConfig, request: &R) -> TagValue {
    let mut values = request.header_values(&config.tag_header);
    match (values.next(), values.next()) {
        (None, _) => TagValue::Absent,
        (Some(value), None) => config
            .version_named(value)
            .map_or(TagValue::Other, TagValue::Known),
        _ => TagValue::Other,
    }
}

/// The value of the first `canary-version` member across the `baggage` headers (its
/// properties after `;` cut off, white space trimmed).
pub fn baggage_version<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    for line in lines {
        for member in line.split(|&b| b == b',') {
            let member = member.split(|&b| b == b';').next().unwrap_or_default();
            let Some(eq) = member.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = (member.get(..eq)?, member.get(eq + 1..)?);
            if key.trim_ascii() == baggage::MEMBER_KEY.as_bytes() {
                return Some(value.trim_ascii());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baggage_member() {
        let lines = [&b"a=1, canary-version = v2 ;p=x"[..], b"canary-version=v3"];
        assert_eq!(baggage_version(lines.into_iter()), Some(&b"v2"[..]));
        assert_eq!(
            baggage_version([&b"canary-versions=v2,x"[..]].into_iter()),
            None
        );
    }
}
