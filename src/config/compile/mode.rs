//! The mode's fields (SPEC §8, §12): a sidecar's or waypoint's `restore` and trace memory,
//! and the other modes' fields rejected where given.

use super::Errors;
use crate::config::dto::{ModeDto, PluginConfigDto, RestoreSourceDto};
use crate::config::error::{ErrorKind, JsonPath, ListOf};
use crate::config::{
    Mode, RestoreSource, Sidecar, TraceMemory, DEFAULT_TRACE_ENTRIES, DEFAULT_TRACE_TTL_S,
    MAX_TRACE_ENTRIES, MAX_TRACE_TTL_S,
};

/// SPEC §8, §12: the mode, its own fields, and the other modes' fields rejected where given.
pub(super) fn compile_mode(dto: &PluginConfigDto, root: &JsonPath, errors: &mut Errors) -> Mode {
    let mode = dto.mode.unwrap_or(ModeDto::Gateway);
    // The fields of the other modes, and whether each is given.
    let (other, others_fields): (_, &[(&str, bool)]) = match mode {
        ModeDto::Gateway => (
            "sidecar\" or \"waypoint",
            &[
                ("restore", dto.restore.is_some()),
                ("trace_memory", dto.trace_memory.is_some()),
            ],
        ),
        ModeDto::Sidecar | ModeDto::Waypoint => (
            "gateway",
            &[
                ("client_ip", dto.client_ip.is_some()),
                ("trusted_tag_sources", dto.trusted_tag_sources.is_some()),
                ("normalize", dto.normalize.is_some()),
                ("rules", dto.rules.is_some()),
                ("sticky_cookie", dto.sticky_cookie.is_some()),
            ],
        ),
    };
    for (field, given) in others_fields {
        if *given {
            errors.add(root.key(field), ErrorKind::OnlyInMode(other));
        }
    }
    let default_restore: &[RestoreSource] = match mode {
        ModeDto::Gateway => return Mode::Gateway,
        ModeDto::Sidecar => &RestoreSource::SIDECAR_DEFAULT,
        ModeDto::Waypoint => &RestoreSource::WAYPOINT_DEFAULT,
    };
    let settings = Sidecar {
        restore: compile_restore(dto.restore.as_deref(), default_restore, root, errors),
        trace_memory: compile_trace_memory(dto, root, errors),
    };
    match mode {
        ModeDto::Waypoint => Mode::Waypoint(settings),
        _ => Mode::Sidecar(settings),
    }
}

/// `restore`: a non-empty list, no source twice.
fn compile_restore(
    sources: Option<&[RestoreSourceDto]>,
    default: &[RestoreSource],
    root: &JsonPath,
    errors: &mut Errors,
) -> Vec<RestoreSource> {
    let Some(sources) = sources else {
        return default.to_vec();
    };
    let restore_path = root.key("restore");
    if sources.is_empty() {
        errors.add(
            restore_path.clone(),
            ErrorKind::EmptyList(ListOf::RestoreSource),
        );
    }
    let mut compiled: Vec<RestoreSource> = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let source = match source {
            RestoreSourceDto::Header => RestoreSource::Header,
            RestoreSourceDto::Baggage => RestoreSource::Baggage,
            RestoreSourceDto::Tracestate => RestoreSource::Tracestate,
            RestoreSourceDto::Trace => RestoreSource::Trace,
        };
        if compiled.contains(&source) {
            errors.add(restore_path.index(i), ErrorKind::ListedTwice(source.name()));
        } else {
            compiled.push(source);
        }
    }
    compiled
}

/// `trace_memory`, its bounds checked.
fn compile_trace_memory(
    dto: &PluginConfigDto,
    root: &JsonPath,
    errors: &mut Errors,
) -> TraceMemory {
    let memory_path = root.key("trace_memory");
    let memory = dto.trace_memory.as_ref();
    let entries = memory.and_then(|m| m.entries);
    let entries = match entries {
        None => DEFAULT_TRACE_ENTRIES,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=MAX_TRACE_ENTRIES).contains(&n) => n,
            _ => {
                errors.add(
                    memory_path.key("entries"),
                    ErrorKind::OutOfRange {
                        value: n,
                        min: 1,
                        max: u64::from(MAX_TRACE_ENTRIES),
                    },
                );
                DEFAULT_TRACE_ENTRIES
            }
        },
    };
    let ttl_s = match memory.and_then(|m| m.ttl_s) {
        None => DEFAULT_TRACE_TTL_S,
        Some(n) if (1..=MAX_TRACE_TTL_S).contains(&n) => n,
        Some(n) => {
            errors.add(
                memory_path.key("ttl_s"),
                ErrorKind::OutOfRange {
                    value: n,
                    min: 1,
                    max: MAX_TRACE_TTL_S,
                },
            );
            DEFAULT_TRACE_TTL_S
        }
    };
    TraceMemory { entries, ttl_s }
}
