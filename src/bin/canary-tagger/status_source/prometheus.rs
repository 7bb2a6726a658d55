//! A Prometheus server: our series and the cluster stats of every scraped pod, from its
//! query API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{canonical, http_get, parse_value, snapshot, Labels, Sample, Snapshot, SourceError};

/// Our series, and the cluster stats `status` reads, of every scraped pod.
const OUR_QUERY: &str = "{__name__=~\"canary_tagger_.+\"}";
const CLUSTER_QUERY: &str = "{__name__=~\"envoy_cluster_upstream_rq(_total|_xx|_time_bucket)?\"}";

pub(super) fn read_prometheus(url: &str, ago: Option<Duration>) -> Result<Snapshot, SourceError> {
    let api = format!("{url}/api/v1/query");
    let at = SystemTime::now()
        .checked_sub(ago.unwrap_or_default())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let time = format!("{}.{:03}", at.as_secs(), at.subsec_millis());
    let mut samples = Vec::new();
    for query in [OUR_QUERY, CLUSTER_QUERY] {
        let body = http_get(&api, &[("query", query), ("time", &time)])?;
        samples.extend(
            prometheus_answer(&body).map_err(|reason| SourceError(format!("{api}: {reason}")))?,
        );
    }
    if !samples.iter().any(|s| s.name.starts_with("canary_tagger_")) {
        return Err(SourceError(format!(
            "{url}: Prometheus has no canary_tagger_ series (does it scrape the gateways?)"
        )));
    }
    snapshot(&samples, url)
}

/// The samples of an instant query's answer (`resultType` vector).
fn prometheus_answer(body: &str) -> Result<Vec<Sample>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|_| String::from("not a Prometheus API answer"))?;
    if answer.get("status").and_then(|s| s.as_str()) != Some("success") {
        let error = answer
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no status");
        return Err(format!("the query failed: {error}"));
    }
    let rows = answer
        .pointer("/data/result")
        .and_then(|r| r.as_array())
        .ok_or_else(|| String::from("not a Prometheus API answer"))?;
    rows.iter()
        .map(|row| {
            let labels: Labels = row
                .get("metric")
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let name = labels
                .iter()
                .find(|(k, _)| k == "__name__")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let value = row
                .pointer("/value/1")
                .and_then(|v| v.as_str())
                .and_then(parse_value)
                .ok_or_else(|| format!("{name}: no value"))?;
            Ok(canonical(Sample {
                name,
                labels,
                value,
            }))
        })
        .collect()
}
