//! Names of the counters the filter exports (docs/metrics.md documents them).
//!
//! One scheme for every metric. A metric is its Prometheus name (`canary_tagger_requests_total`)
//! and its labels. The Envoy stat name of one series is that name with the labels written in
//! before its last word, each as `label=.=value;.;` — the encoding Istio's `extraStatTags`
//! extracts:
//!
//! ```text
//! canary_tagger_requests.decided_by=.=rule;.;rule=.=testers;.;version=.=v2;.;total
//! ```
//!
//! Envoy shows it under `wasmcustom.` in `/stats`. With the stats tags of
//! `envoyfilter/metrics/stats-tags.yaml` — one regex per label name, `(label=\.=(.*?);\.;)`,
//! whatever the metric — Envoy cuts every `label=.=value;.;` out of the name and keeps it as
//! a tag, so `/stats/prometheus` shows
//! `canary_tagger_requests_total{decided_by="rule",rule="testers",version="v2"}`. Without
//! them every series is a metric name of its own (`/stats/prometheus` writes each character
//! outside `[A-Za-z0-9_]` as `_`). A metric without labels is its Prometheus name as is.
//!
//! A label value is written as configured, except `%`, `;` and `=`, which are
//! percent-encoded (`%25`, `%3B`, `%3D`): so a value never contains `;.;` (which would end
//! it early) or `name=.=` (which would look like another label), whatever a rule name holds.
//! A `.` that ends a value is written `%2E` too: Envoy drops trailing dots from tag values
//! (`v1.` would show as `v1`, the same label as version `v1`).
//!
//! Adding a metric: a `pub const` with its Prometheus name below, its series built with
//! [`stat_name`] (in [`MetricNames`] when they depend on the configuration). A new label
//! name also needs its line in `LABELS`, in `envoyfilter/metrics/stats-tags.yaml` and in
//! the Istio recipe beside it (tests check that the three agree).

use crate::config::{Action, CompiledConfig, Mode, RestoreSource, Rule};

/// Who decided a request's version: a rule (then `rule` names it), the default, or a
/// trusted client's own tag.
pub const DECIDED_BY: &str = "decided_by";
pub const RULE: &str = "rule";
pub const VERSION: &str = "version";
/// A `normalize` entry's (lower-case) header name.
pub const HEADER: &str = "header";
/// Sidecar mode: where an outbound call's version came from (`header`, `baggage`, `trace`,
/// `default`).
pub const SOURCE: &str = "source";
/// Every label name. Each has one `stats_tags` regex in `envoyfilter/metrics/stats-tags.yaml`.
/// No name may end with another (Istio's regexes are not anchored: `version` would also
/// match inside `source_version=.=`).
pub const LABELS: [&str; 5] = [DECIDED_BY, RULE, VERSION, HEADER, SOURCE];

/// Every request, once: labels `decided_by` (`rule`, `default`, `trusted_tag`), `rule`
/// (only when a rule decided), `version`.
pub const REQUESTS: &str = "canary_tagger_requests_total";
/// Header rewrites by a `normalize` entry; label `header`.
pub const NORMALIZED: &str = "canary_tagger_normalized_total";
pub const CLIENT_TAG_STRIPPED: &str = "canary_tagger_client_tag_stripped_total";
pub const STICKY_ID_ISSUED: &str = "canary_tagger_sticky_id_issued_total";
/// Sticky cookies whose value did not verify (`sticky_cookie.signing`, SPEC §10): forged,
/// truncated, unsigned, signed with an unknown key, malformed.
pub const STICKY_ID_REJECTED: &str = "canary_tagger_sticky_id_rejected_total";
pub const CLIENT_IP_FALLBACK: &str = "canary_tagger_client_ip_fallback_total";
pub const CONFIG_REJECTED: &str = "canary_tagger_config_rejected_total";
/// Sidecar mode: every outbound call, once; labels `source` (the `restore` source that
/// yielded the version, or `default`) and `version`.
pub const RESTORED: &str = "canary_tagger_restored_total";
/// Sidecar mode: inbound requests whose version was remembered under their trace ids;
/// label `version`.
pub const TRACE_REMEMBERED: &str = "canary_tagger_trace_remembered_total";
/// Sidecar mode: outbound calls that carried trace ids of which none was remembered (or
/// only past `ttl_s`) when the `trace` source was consulted.
pub const TRACE_MISSES: &str = "canary_tagger_trace_misses_total";
/// Sidecar mode: requests through a listener whose direction is neither inbound nor
/// outbound (left untouched).
pub const DIRECTION_UNSPECIFIED: &str = "canary_tagger_direction_unspecified_total";
/// A gauge per rule with a `split.ramp`, label `rule`: the percent of buckets on the split's
/// first listed version now, rounded down to a whole percent (gauges hold integers).
pub const RAMP_PERCENT: &str = "canary_tagger_ramp_percent";

/// The Envoy stat name of the series of `metric` (a Prometheus name) with these labels,
/// in this order. See the module documentation.
pub fn stat_name(metric: &str, labels: &[(&str, &str)]) -> String {
    let Some((stem, last_word)) = metric.rsplit_once('_').filter(|_| !labels.is_empty()) else {
        return metric.to_string();
    };
    let mut name = String::with_capacity(metric.len() + labels.len() * 24);
    name.push_str(stem);
    name.push('.');
    for (label, value) in labels {
        name.push_str(label);
        name.push_str("=.=");
        let (body, trailing_dot) = match value.strip_suffix('.') {
            Some(body) => (body, true),
            None => (*value, false),
        };
        for c in body.chars() {
            match c {
                '%' => name.push_str("%25"),
                ';' => name.push_str("%3B"),
                '=' => name.push_str("%3D"),
                c => name.push(c),
            }
        }
        if trailing_dot {
            name.push_str("%2E");
        }
        name.push_str(";.;");
    }
    name.push_str(last_word);
    name
}

/// The per-configuration counter names.
pub struct MetricNames {
    /// `[slot][version]`: slot = rule index, then the default, then the trusted client tag.
    /// `None` where that pair can never happen (a fixed-version rule names one version).
    pub decisions: Vec<Vec<Option<String>>>,
    /// Per `normalize` entry.
    pub normalized: Vec<String>,
    /// `(rule index, gauge name)` per rule with a `split.ramp`.
    pub ramp_percent: Vec<(usize, String)>,
}

impl MetricNames {
    pub fn new(config: &CompiledConfig) -> MetricNames {
        let mut decisions: Vec<Vec<Option<String>>> = config
            .rules
            .iter()
            .map(|rule| rule_decisions(config, rule))
            .collect();
        decisions.push(per_version(config, |index, version| {
            (index == config.default_version.index())
                .then(|| stat_name(REQUESTS, &[(DECIDED_BY, "default"), (VERSION, version)]))
        }));
        decisions.push(per_version(config, |_, version| {
            (!config.trusted_tag_sources.is_empty())
                .then(|| stat_name(REQUESTS, &[(DECIDED_BY, "trusted_tag"), (VERSION, version)]))
        }));
        let normalized = config
            .normalize
            .iter()
            .map(|entry| stat_name(NORMALIZED, &[(HEADER, &entry.header)]))
            .collect();
        let ramp_percent = config
            .ramped_splits()
            .filter_map(|(index, _)| {
                let rule = config.rules.get(index)?;
                Some((index, stat_name(RAMP_PERCENT, &[(RULE, &rule.name)])))
            })
            .collect();
        MetricNames {
            decisions,
            normalized,
            ramp_percent,
        }
    }
}

/// A rule's decision series per version: `None` for a version the rule can never pick.
fn rule_decisions(config: &CompiledConfig, rule: &Rule) -> Vec<Option<String>> {
    per_version(config, |index, version| {
        let reachable = match &rule.action {
            Action::Fixed(fixed) => fixed.index() == index,
            Action::VersionFrom(_) => true,
            Action::Split(split) => split.weights().iter().any(|(_, v)| v.index() == index),
        };
        reachable.then(|| {
            stat_name(
                REQUESTS,
                &[(DECIDED_BY, "rule"), (RULE, &rule.name), (VERSION, version)],
            )
        })
    })
}

/// `name(index, version)` for each of the configuration's versions, in order.
/// (`#[inline]`: as a call it took 10 bytes more of the module.)
#[inline]
fn per_version(
    config: &CompiledConfig,
    name: impl Fn(usize, &str) -> Option<String>,
) -> Vec<Option<String>> {
    config
        .versions()
        .iter()
        .enumerate()
        .map(|(index, version)| name(index, version))
        .collect()
}

/// The per-configuration counter names of sidecar mode.
pub struct SidecarMetricNames {
    /// `[source][version]`: source = `RestoreSource::index`, then the default (3). `None`
    /// where that pair cannot happen (a source not in `restore`; the default names one
    /// version).
    pub restored: Vec<Vec<Option<String>>>,
    /// Per version.
    pub remembered: Vec<String>,
}

impl SidecarMetricNames {
    pub fn new(config: &CompiledConfig) -> SidecarMetricNames {
        let restore = config
            .sidecar()
            .map(|s| s.restore.as_slice())
            .unwrap_or_default();
        // A waypoint counts a request that arrived with a known tag as `header`, listed or not.
        let waypoint = matches!(config.mode, Mode::Waypoint(_));
        let counted = |source: &RestoreSource| {
            restore.contains(source) || (waypoint && *source == RestoreSource::Header)
        };
        let mut restored: Vec<Vec<Option<String>>> = RestoreSource::ALL
            .iter()
            .map(|source| {
                per_version(config, |_, version| {
                    counted(source).then(|| {
                        stat_name(RESTORED, &[(SOURCE, source.name()), (VERSION, version)])
                    })
                })
            })
            .collect();
        restored.push(per_version(config, |index, version| {
            (index == config.default_version.index())
                .then(|| stat_name(RESTORED, &[(SOURCE, "default"), (VERSION, version)]))
        }));
        let remembered = config
            .versions()
            .iter()
            .map(|version| stat_name(TRACE_REMEMBERED, &[(VERSION, version)]))
            .collect();
        SidecarMetricNames {
            restored,
            remembered,
        }
    }
}

// Reading names back (`canary-tagger status`): native only. Unused in the module, but
// compiled into it they would still change it (shared generic instances are optimized
// differently with more callers before LTO drops these).

/// Every metric, by its Prometheus name: what reads the names back ([`parse_sanitized_name`],
/// `canary-tagger status`) knows each stem from here.
pub const ALL: [&str; 12] = [
    REQUESTS,
    NORMALIZED,
    CLIENT_TAG_STRIPPED,
    STICKY_ID_ISSUED,
    STICKY_ID_REJECTED,
    CLIENT_IP_FALLBACK,
    CONFIG_REJECTED,
    RESTORED,
    TRACE_REMEMBERED,
    TRACE_MISSES,
    DIRECTION_UNSPECIFIED,
    RAMP_PERCENT,
];

/// A series read back from its name: the metric's Prometheus name and its labels.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedName {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

/// The inverse of [`stat_name`]: the metric and the (decoded) labels of an Envoy stat name
/// (without `wasmcustom.`), or `None` for a name not of this scheme. A name without labels
/// is the metric's name as is.
#[cfg(not(target_arch = "wasm32"))]
pub fn parse_stat_name(name: &str) -> Option<ParsedName> {
    let Some((stem, mut rest)) = name.split_once('.') else {
        return name.starts_with("canary_tagger_").then(|| ParsedName {
            metric: name.to_string(),
            labels: Vec::new(),
        });
    };
    let mut labels = Vec::new();
    while let Some((label, after)) = rest.split_once("=.=") {
        let (value, next) = after.split_once(";.;")?;
        if label.is_empty() || label.contains('.') {
            return None;
        }
        labels.push((label.to_string(), decode_label_value(value)));
        rest = next;
    }
    if labels.is_empty()
        || rest.is_empty()
        || rest.contains('.')
        || !stem.starts_with("canary_tagger_")
    {
        return None;
    }
    Some(ParsedName {
        metric: format!("{stem}_{rest}"),
        labels,
    })
}

/// A label value as configured, from its form in a stat name (`%25`, `%3B`, `%3D`, `%2E`
/// decoded; see the module documentation).
#[cfg(not(target_arch = "wasm32"))]
pub fn decode_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let decoded = match from.get(..3) {
            Some("%25") => Some('%'),
            Some("%3B") => Some(';'),
            Some("%3D") => Some('='),
            Some("%2E") => Some('.'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = from.get(3..).unwrap_or_default();
            }
            None => {
                out.push('%');
                rest = from.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// A series from the name `/stats/prometheus` gives it when Envoy has no stats tags for our
/// labels: the stat name with every character outside `[A-Za-z0-9_]` written `_`
/// (`canary_tagger_requests_decided_by___rule___rule___testers___version___v2___total`).
/// That is lossy: a value's `.`, `-`, `%` or `:` come back as `_`.
#[cfg(not(target_arch = "wasm32"))]
pub fn parse_sanitized_name(name: &str) -> Option<ParsedName> {
    if ALL.contains(&name) {
        return Some(ParsedName {
            metric: name.to_string(),
            labels: Vec::new(),
        });
    }
    ALL.iter().find_map(|metric| {
        let (stem, last_word) = metric.rsplit_once('_')?;
        let middle = name
            .strip_prefix(stem)?
            .strip_prefix('_')?
            .strip_suffix(last_word)?;
        let labels = sanitized_labels(middle)?;
        Some(ParsedName {
            metric: metric.to_string(),
            labels,
        })
    })
}

/// `label___value___label___value___` (each `=.=` and `;.;` became `___`): a value ends at
/// the first `___` followed by another label name or by the end.
#[cfg(not(target_arch = "wasm32"))]
fn sanitized_labels(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let label = LABELS
            .iter()
            .find(|label| rest.starts_with(&format!("{label}___")))?;
        let after = rest.get(label.len() + 3..)?;
        // Every `___`, overlapping ones too: a value may end with `_`.
        let end = (0..after.len()).find(|&at| {
            let Some(next) = after.get(at..).and_then(|from| from.strip_prefix("___")) else {
                return false;
            };
            next.is_empty() || LABELS.iter().any(|l| next.starts_with(&format!("{l}___")))
        })?;
        labels.push((label.to_string(), after.get(..end)?.to_string()));
        rest = after.get(end + 3..)?;
    }
    (!labels.is_empty()).then_some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_every_label_before_the_last_word() {
        let config = CompiledConfig::from_json(
            br#"{"versions": ["v1", "v1.2"], "default_version": "v1",
                 "trusted_tag_sources": ["10.0.0.0/8"],
                 "normalize": [{"header": "X.Svc", "allowed": ["a"], "default": "a"}],
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
                    requests("decided_by=.=rule;.;rule=.=beta.users:eu;.;version=.=v1.2;.;")
                ],
                vec![
                    requests("decided_by=.=rule;.;rule=.=half;.;version=.=v1;.;"),
                    requests("decided_by=.=rule;.;rule=.=half;.;version=.=v1.2;.;")
                ],
                vec![requests("decided_by=.=default;.;version=.=v1;.;"), None],
                vec![
                    requests("decided_by=.=trusted_tag;.;version=.=v1;.;"),
                    requests("decided_by=.=trusted_tag;.;version=.=v1.2;.;")
                ],
            ]
        );
        assert_eq!(
            names.normalized,
            vec!["canary_tagger_normalized.header=.=x.svc;.;total".to_string()]
        );
    }

    /// The series of `canary_tagger_requests_total` with these labels (as encoded).
    fn requests(labels: &str) -> Option<String> {
        Some(format!("canary_tagger_requests.{labels}total"))
    }

    /// The series of `canary_tagger_restored_total` with these labels (as encoded).
    fn restored(labels: &str) -> Option<String> {
        Some(format!("canary_tagger_restored.{labels}total"))
    }

    fn sidecar_names(config: &[u8]) -> SidecarMetricNames {
        SidecarMetricNames::new(&CompiledConfig::from_json(config).unwrap())
    }

    #[test]
    fn sidecar_names_per_source_and_version() {
        let names = sidecar_names(
            br#"{"mode": "sidecar", "versions": ["v1", "v2"], "default_version": "v1",
                 "restore": ["baggage", "trace"]}"#,
        );
        assert_eq!(
            names.restored,
            vec![
                vec![None, None],
                vec![
                    restored("source=.=baggage;.;version=.=v1;.;"),
                    restored("source=.=baggage;.;version=.=v2;.;")
                ],
                vec![None, None],
                vec![
                    restored("source=.=trace;.;version=.=v1;.;"),
                    restored("source=.=trace;.;version=.=v2;.;")
                ],
                vec![restored("source=.=default;.;version=.=v1;.;"), None],
            ]
        );
        assert_eq!(
            names.remembered,
            vec![
                "canary_tagger_trace_remembered.version=.=v1;.;total".to_string(),
                "canary_tagger_trace_remembered.version=.=v2;.;total".to_string()
            ]
        );
    }

    #[test]
    fn a_waypoint_counts_a_kept_tag_as_header_even_when_restore_leaves_it_out() {
        let names = sidecar_names(
            br#"{"mode": "waypoint", "versions": ["v1", "v2"], "default_version": "v1",
                 "restore": ["tracestate"]}"#,
        );
        assert_eq!(
            names.restored,
            vec![
                vec![
                    restored("source=.=header;.;version=.=v1;.;"),
                    restored("source=.=header;.;version=.=v2;.;")
                ],
                vec![None, None],
                vec![
                    restored("source=.=tracestate;.;version=.=v1;.;"),
                    restored("source=.=tracestate;.;version=.=v2;.;")
                ],
                vec![None, None],
                vec![restored("source=.=default;.;version=.=v1;.;"), None],
            ]
        );
    }

    #[test]
    fn each_ramped_rule_has_a_ramp_percent_gauge() {
        let config = CompiledConfig::from_json(
            br#"{"versions": ["v1", "v2"], "default_version": "v1",
                 "rules": [{"name": "fixed", "split": {"weights": [{"version": "v2", "percent": 100}]}},
                           {"name": "grow", "split": {"weights": [{"version": "v2", "percent": 10},
                                                                  {"version": "v1", "percent": 90}],
                            "ramp": {"start": "2026-12-01T10:00:00Z", "duration_s": 60, "to": 100}}}]}"#,
        )
        .unwrap();
        assert_eq!(
            MetricNames::new(&config).ramp_percent,
            vec![(1, "canary_tagger_ramp.rule=.=grow;.;percent".to_string())]
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn stat_names_read_back_as_written() {
        let labels: &[&[(&str, &str)]] = &[
            &[
                (DECIDED_BY, "rule"),
                (RULE, "beta.users:eu"),
                (VERSION, "v1.2"),
            ],
            &[(RULE, "a;.;version=.=v9;.;%3B")],
            &[(RULE, "x.."), (VERSION, ".")],
            &[(SOURCE, "trace"), (VERSION, "v2")],
        ];
        for labels in labels {
            let name = stat_name(REQUESTS, labels);
            let parsed = parse_stat_name(&name).unwrap();
            assert_eq!(parsed.metric, REQUESTS, "{name}");
            let expected: Vec<(String, String)> = labels
                .iter()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect();
            assert_eq!(parsed.labels, expected, "{name}");
        }
        assert_eq!(
            parse_stat_name("canary_tagger_ramp.rule=.=grow;.;percent").unwrap(),
            ParsedName {
                metric: RAMP_PERCENT.into(),
                labels: vec![(RULE.into(), "grow".into())]
            }
        );
        assert_eq!(
            parse_stat_name(STICKY_ID_ISSUED).unwrap().metric,
            STICKY_ID_ISSUED
        );
        for other in [
            "cluster.v1.upstream_rq_total",
            "canary_tagger_requests.rule=.=x",
            "x",
        ] {
            assert_eq!(parse_stat_name(other), None, "{other}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn sanitized_names_read_back_but_lose_punctuation() {
        let parsed = parse_sanitized_name(
            "canary_tagger_requests_decided_by___rule___rule___beta_users_eu___version___v2___total",
        )
        .unwrap();
        assert_eq!(parsed.metric, REQUESTS);
        assert_eq!(
            parsed.labels,
            vec![
                (DECIDED_BY.into(), "rule".into()),
                (RULE.into(), "beta_users_eu".into()),
                (VERSION.into(), "v2".into())
            ]
        );
        let ramp = parse_sanitized_name("canary_tagger_ramp_rule___my_rule____percent").unwrap();
        assert_eq!(ramp.metric, RAMP_PERCENT);
        assert_eq!(ramp.labels, vec![(RULE.into(), "my_rule_".into())]);
        assert_eq!(
            parse_sanitized_name(CONFIG_REJECTED).unwrap().labels,
            Vec::new()
        );
        assert_eq!(
            parse_sanitized_name("envoy_cluster_upstream_rq_total"),
            None
        );
    }

    #[test]
    fn metrics_without_labels_are_their_prometheus_name() {
        assert_eq!(
            stat_name(STICKY_ID_ISSUED, &[]),
            "canary_tagger_sticky_id_issued_total"
        );
    }

    #[test]
    fn a_value_can_neither_end_early_nor_pose_as_a_label() {
        // `;` and `=` are the only characters of the encoding a value could fake; `%` is
        // encoded too so that every value keeps a label of its own (`%3B` vs `;`).
        assert_eq!(
            stat_name(REQUESTS, &[(RULE, "a;.;version=.=v9;.;%3B")]),
            "canary_tagger_requests.rule=.=a%3B.%3Bversion%3D.%3Dv9%3B.%3B%253B;.;total"
        );
        let name = stat_name(REQUESTS, &[(RULE, "x=.=y;.;"), (VERSION, "v1")]);
        assert_eq!(name.matches("=.=").count(), 2);
        assert_eq!(name.matches(";.;").count(), 2);
    }

    #[test]
    fn a_trailing_dot_survives_envoy() {
        let rule = |name| stat_name(REQUESTS, &[(RULE, name)]);
        assert_eq!(rule("x."), "canary_tagger_requests.rule=.=x%2E;.;total");
        assert_eq!(rule("x.."), "canary_tagger_requests.rule=.=x.%2E;.;total");
        assert_eq!(rule("."), "canary_tagger_requests.rule=.=%2E;.;total");
        assert_eq!(rule(".x.y"), "canary_tagger_requests.rule=.=.x.y;.;total");
    }

    #[test]
    fn label_names_are_prometheus_names_and_none_ends_with_another() {
        for label in LABELS {
            assert!(
                label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
            for other in LABELS {
                assert!(
                    label == other || !label.ends_with(other),
                    "{label} ends with {other}"
                );
            }
        }
    }

    #[test]
    fn stats_tags_file_has_one_istio_form_regex_per_label() {
        // The same regex Istio generates for each `extraStatTags` entry; the e2e tests
        // prove that Envoy extracts the labels with it.
        let file = include_str!("../envoyfilter/metrics/stats-tags.yaml");
        let entries: Vec<(&str, &str)> = file
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.strip_prefix("- tag_name: "))
            .zip(
                file.lines()
                    .map(str::trim)
                    .filter_map(|line| line.strip_prefix("regex: ")),
            )
            .collect();
        let expected: Vec<(String, String)> = LABELS
            .iter()
            .map(|label| (label.to_string(), format!(r"'({label}=\.=(.*?);\.;)'")))
            .collect();
        let found: Vec<(String, String)> = entries
            .iter()
            .map(|(tag, regex)| (tag.to_string(), regex.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
}
