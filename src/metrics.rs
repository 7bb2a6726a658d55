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
        let versions = || config.versions().iter().enumerate();
        let mut decisions: Vec<Vec<Option<String>>> = config
            .rules
            .iter()
            .map(|rule| {
                versions()
                    .map(|(index, version)| {
                        let reachable = match &rule.action {
                            Action::Fixed(fixed) => fixed.index() == index,
                            Action::VersionFrom(_) => true,
                            Action::Split(split) => {
                                split.ranges.iter().any(|(_, v)| v.index() == index)
                            }
                        };
                        reachable.then(|| {
                            format!(
                                "{PREFIX}.requests.rule.{}.{}",
                                metric_part(&rule.name),
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
                    (index == config.default_version.index())
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

/// One stat name segment: dots separate segments in Envoy, and Prometheus accepts only
/// `[A-Za-z0-9_]` anyway, so anything but letters, digits, `_` and `-` is written as `_`.
fn metric_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_stat_segment() {
        let config = CompiledConfig::from_json(
            br#"{"versions": ["v1", "v1.2"], "default_version": "v1",
                 "normalize": [{"header": "x.svc", "allowed": ["a"], "default": "a"}],
                 "rules": [{"name": "beta.users:eu", "version": "v1.2"},
                           {"name": "half", "split": {"weights": [{"version": "v1", "percent": 50},
                                                                  {"version": "v1.2", "percent": 50}]}}]}"#,
        )
        .unwrap();
        let names = MetricNames::new(&config);
        assert_eq!(
            names.decisions,
            vec![
                vec![
                    None,
                    Some("canary_tagger.requests.rule.beta_users_eu.v1_2".to_string())
                ],
                vec![
                    Some("canary_tagger.requests.rule.half.v1".to_string()),
                    Some("canary_tagger.requests.rule.half.v1_2".to_string())
                ],
                vec![Some("canary_tagger.requests.default.v1".to_string()), None],
                vec![None, None],
            ]
        );
        assert_eq!(
            names.normalized,
            vec!["canary_tagger.normalized.x_svc".to_string()]
        );
    }
}
