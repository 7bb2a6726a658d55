//! A split's `ramp` as `explain` (and `validate`) describe it: its schedule, and where it is
//! at the time explained.

use canary_tagger::config::{CompiledConfig, Split};
use canary_tagger::ramp::{format_rfc3339, Percent, Ramp, UnixSeconds};

use super::report::RampOut;

/// A ramp's whole schedule: `v2 10% at START -> 100% at END (3600 s)`.
pub fn ramp_schedule(config: &CompiledConfig, split: &Split, ramp: &Ramp) -> String {
    let (from, first) = split
        .weights()
        .first()
        .map_or((0, "?"), |&(buckets, version)| {
            (buckets, config.version_name(version))
        });
    format!(
        "{first} {}% at {} -> {}% at {} ({} s)",
        Percent(from),
        format_rfc3339(ramp.start),
        Percent(ramp.to),
        format_rfc3339(ramp.end()),
        ramp.duration_s
    )
}

/// Where a ramped split is at `at` (its ranges must have been set to `at`).
pub(super) fn ramp_out(config: &CompiledConfig, split: &Split, at: UnixSeconds) -> Option<RampOut> {
    let ramp = split.ramp.as_ref()?;
    Some(RampOut {
        at: format_rfc3339(at),
        percent: f64::from(split.first_buckets()) / 100.0,
        phase: ramp.phase(at).into(),
        schedule: ramp_schedule(config, split, ramp),
    })
}

/// `v2 55% (ramping)`: a ramped split at the time its ranges were set to.
pub fn ramp_now(config: &CompiledConfig, split: &Split, at: UnixSeconds) -> Option<String> {
    let ramp = ramp_out(config, split, at)?;
    let first = split
        .weights()
        .first()
        .map_or("?", |&(_, version)| config.version_name(version));
    Some(format!(
        "{first} {}% ({})",
        Percent(split.first_buckets()),
        ramp.phase.words()
    ))
}
