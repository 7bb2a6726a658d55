//! Samples into one [`Snapshot`]: our series summed over pods (a ramp's gauge taken once),
//! and each cluster's requests, 5xx and p99.

use std::collections::BTreeMap;

use canary_tagger::metrics::{self, LABELS};

use super::{
    parse_value, ClusterStats, Labels, Sample, SeriesKey, Snapshot, SourceError, CLUSTER_LABELS,
    RQ_CLASS, RQ_TIME_BUCKET, RQ_TIME_P99, RQ_TOTAL, RQ_XX,
};

/// The samples of one page (or of every pod Prometheus scrapes, summed).
pub(super) fn snapshot(samples: &[Sample], origin: &str) -> Result<Snapshot, SourceError> {
    let mut out = Snapshot::default();
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for sample in samples {
        if let Some(key) = our_series(sample) {
            let value = out.series.entry(key.clone()).or_default();
            // Counters of several pods add up; a ramp's gauge is the same on each.
            *value = if key.0 == metrics::RAMP_PERCENT {
                value.max(sample.value)
            } else {
                *value + sample.value
            };
        } else if let Some(cluster) = cluster_label(sample) {
            add_cluster_sample(&mut out, &mut buckets, cluster, sample);
        }
    }
    if out.series.is_empty() {
        return Err(SourceError(format!(
            "{origin} has no canary_tagger_ series (is the filter installed on this gateway?)"
        )));
    }
    for (cluster, buckets) in buckets {
        if let Some(stats) = out.clusters.get_mut(&cluster) {
            stats.p99_ms = quantile(0.99, buckets);
        }
    }
    Ok(out)
}

/// A sample of ours, as the canonical samples have it: its metric and our labels.
fn our_series(sample: &Sample) -> Option<SeriesKey> {
    if !metrics::ALL.contains(&sample.name.as_str()) {
        return None;
    }
    let mut labels: Labels = sample
        .labels
        .iter()
        .filter(|(k, _)| LABELS.contains(&k.as_str()))
        .cloned()
        .collect();
    labels.sort();
    Some((sample.name.clone(), labels))
}

/// A sample of `/stats/prometheus` or of Prometheus in the form `/stats` gives: a series
/// of ours by its metric's name with its labels decoded, whether the stats tags made them
/// labels (`canary_tagger_requests_total{version="v2"}`) or left them in the name.
pub(super) fn canonical(mut sample: Sample) -> Sample {
    if !sample.name.starts_with("canary_tagger_") {
        return sample;
    }
    if metrics::ALL.contains(&sample.name.as_str()) {
        for (name, value) in &mut sample.labels {
            if LABELS.contains(&name.as_str()) {
                *value = metrics::decode_label_value(value);
            }
        }
    } else if let Some(parsed) = metrics::parse_sanitized_name(&sample.name) {
        sample.name = parsed.metric;
        sample.labels = parsed.labels;
    }
    sample
}

fn cluster_label(sample: &Sample) -> Option<&str> {
    if !sample.name.starts_with("envoy_cluster_upstream_rq") && sample.name != RQ_TIME_P99 {
        return None;
    }
    CLUSTER_LABELS.iter().find_map(|name| {
        sample
            .labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    })
}

fn label<'s>(sample: &'s Sample, name: &str) -> Option<&'s str> {
    sample
        .labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn add_cluster_sample(
    out: &mut Snapshot,
    buckets: &mut BTreeMap<String, Vec<(f64, f64)>>,
    cluster: &str,
    sample: &Sample,
) {
    let is_5xx = label(sample, "envoy_response_code_class") == Some("5")
        || label(sample, "response_code_class") == Some("5xx");
    let per_code =
        label(sample, "envoy_response_code").is_some() || label(sample, "response_code").is_some();
    let stats = || ClusterStats::default();
    match sample.name.as_str() {
        RQ_TOTAL => {
            out.clusters
                .entry(cluster.into())
                .or_insert_with(stats)
                .requests += sample.value
        }
        RQ_XX | RQ_CLASS if is_5xx && !per_code => {
            out.clusters
                .entry(cluster.into())
                .or_insert_with(stats)
                .errors_5xx += sample.value
        }
        RQ_TIME_P99 => {
            out.clusters
                .entry(cluster.into())
                .or_insert_with(stats)
                .p99_ms = Some(sample.value)
        }
        RQ_TIME_BUCKET => {
            if let Some(le) = label(sample, "le").and_then(parse_value) {
                let list = buckets.entry(cluster.into()).or_default();
                match list.iter_mut().find(|(bound, _)| *bound == le) {
                    Some((_, count)) => *count += sample.value,
                    None => list.push((le, sample.value)),
                }
            }
        }
        _ => {}
    }
}

/// The `q` quantile of cumulative buckets `(le, count)`, interpolated within its bucket
/// as PromQL's `histogram_quantile` does; `None` without observations.
fn quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|(_, count)| *count)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let width = count - lower.1;
            let within = if width > 0.0 {
                (rank - lower.1) / width
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * within);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn pods_add_up_but_a_ramp_is_the_same_on_each() {
        let sample = |name: &str, labels: &[(&str, &str)], pod: &str, value: f64| Sample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("pod".to_string(), pod.to_string())])
                .collect(),
            value,
        };
        let samples = [
            sample(metrics::REQUESTS, &[("version", "v1")], "a", 3.0),
            sample(metrics::REQUESTS, &[("version", "v1")], "b", 4.0),
            sample(metrics::RAMP_PERCENT, &[("rule", "r")], "a", 20.0),
            sample(metrics::RAMP_PERCENT, &[("rule", "r")], "b", 20.0),
            sample(RQ_TOTAL, &[("cluster_name", "c")], "a", 5.0),
            sample(RQ_TOTAL, &[("cluster_name", "c")], "b", 6.0),
        ];
        let snapshot = snapshot(&samples, "test").unwrap();
        let key = |metric: &str, label: &str, value: &str| {
            (
                metric.to_string(),
                vec![(label.to_string(), value.to_string())],
            )
        };
        assert_eq!(
            snapshot
                .series
                .get(&key(metrics::REQUESTS, "version", "v1")),
            Some(&7.0)
        );
        assert_eq!(
            snapshot
                .series
                .get(&key(metrics::RAMP_PERCENT, "rule", "r")),
            Some(&20.0)
        );
        assert_eq!(snapshot.clusters.get("c").map(|c| c.requests), Some(11.0));
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let buckets = vec![
            (1.0, 0.0),
            (5.0, 50.0),
            (10.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(0.5, buckets.clone()), Some(5.0));
        assert_eq!(quantile(0.99, buckets), Some(9.9));
        assert_eq!(quantile(0.99, vec![(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.99, vec![(1.0, 0.0), (f64::INFINITY, 3.0)]),
            Some(1.0)
        );
    }
}
