//! Names of the counters the filter exports (README "Metrics" documents them). Envoy shows
//! them under `wasmcustom.` in `/stats`; `/stats/prometheus` drops that prefix and turns
//! every character other than letters, digits and `_` (dots, hyphens) into `_`.

use crate::config::{Action, CompiledConfig};

pub const PREFIX: &str = "canary_tagger";
pub const CLIENT_TAG_STRIPPED: &str = "canary_tagger.client_tag_stripped";
pub const STICKY_ID_ISSUED: &str = "canary_tagger.sticky_id_issued";
pub const CLIENT_IP_FALLBACK: &str = "canary_tagger.client_ip_fallback";
pub const CONFIG_REJECTED: &str = "canary_tagger.config_rejected";

/// The per-configuration counter names.
pub struct MetricNames {
    /// `[slot][version]`: slot = rule index, then the default, then the trusted client tag.
    /// `None` where that pair can never happen (a fixed-version rule names one version).
    pub decisions: Vec<Vec<Option<String>>>,
    /// Per `normalize` entry.
    pub normalized: Vec<String>,
}

impl MetricNames {
    pub fn new(config: &CompiledConfig) -> MetricNames {
        let versions = || config.versions.iter().enumerate();
        let mut decisions: Vec<Vec<Option<String>>> = config
            .rules
            .iter()
            .map(|rule| {
                versions()
                    .map(|(index, version)| {
                        let reachable = match &rule.action {
                            Action::Fixed(fixed) => fixed.0 == index,
                            Action::VersionFrom(_) => true,
                            Action::Split(split) => split.ranges.iter().any(|(_, v)| v.0 == index),
                        };
                        reachable.then(|| {
                            format!(
                                "{PREFIX}.requests.rule.{}.{}",
                                rule.name,
                                metric_part(version)
                            )
                        })
                    })
                    .collect()
            })
            .collect();
        decisions.push(
            versions()
                .map(|(index, version)| {
                    (index == config.default_version.0)
                        .then(|| format!("{PREFIX}.requests.default.{}", metric_part(version)))
                })
                .collect(),
        );
        decisions.push(
            versions()
                .map(|(_, version)| {
                    (!config.trusted_tag_sources.is_empty())
                        .then(|| format!("{PREFIX}.requests.trusted_tag.{}", metric_part(version)))
                })
                .collect(),
        );
        let normalized = config
            .normalize
            .iter()
            .map(|entry| format!("{PREFIX}.normalized.{}", metric_part(&entry.header)))
            .collect();
        MetricNames {
            decisions,
            normalized,
        }
    }
}

/// Dots separate stat name segments in Envoy; keep names inside one segment.
fn metric_part(name: &str) -> String {
    name.replace('.', "_")
}
