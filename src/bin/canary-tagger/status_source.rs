//! Where `canary-tagger status` reads the counters: a gateway's Envoy admin
//! (`/stats/prometheus`), a Prometheus server (`/api/v1/query`) or a saved dump of `/stats`
//! or `/stats/prometheus`. Every source becomes the same [`Snapshot`]: canary-tagger's
//! series by metric and labels, and Envoy's per-cluster upstream stats.
//!
//! The Prometheus text format is parsed here and not with a crate: the candidates split
//! label values on `,` and `=` (a rule name may hold both) and skip the lines they cannot
//! read, where a truncated or foreign page must be an error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use canary_tagger::metrics::{self, ParsedName, LABELS};

/// Why a source could not be read: one line, exit status 2.
#[derive(Debug)]
pub struct SourceError(pub String);

/// One sample as the Prometheus text format has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A series of ours: its metric and its labels (ours only, sorted).
pub type SeriesKey = (String, Vec<(String, String)>);

/// Envoy's upstream stats of one cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterStats {
    pub requests: f64,
    pub errors_5xx: f64,
    /// Milliseconds, since Envoy started (Envoy's cumulative histogram).
    pub p99_ms: Option<f64>,
}

/// Everything `status` shows, read once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub series: BTreeMap<SeriesKey, f64>,
    pub clusters: BTreeMap<String, ClusterStats>,
}

/// Where to read.
#[derive(Clone, Debug)]
pub enum Source {
    /// The base URL of an Envoy admin (`http://127.0.0.1:15000`).
    Admin(String),
    /// The base URL of a Prometheus server.
    Prometheus(String),
    /// A dump file, or `-` for standard input.
    Stats(String),
}

/// The stats Envoy keeps per cluster that `status` reads, as `/stats/prometheus` names them.
const RQ_TOTAL: &str = "envoy_cluster_upstream_rq_total";
const RQ_XX: &str = "envoy_cluster_upstream_rq_xx";
/// `upstream_rq_5xx` with Istio's `response_code_class` tag (its value `5xx`).
const RQ_CLASS: &str = "envoy_cluster_upstream_rq";
const RQ_TIME_BUCKET: &str = "envoy_cluster_upstream_rq_time_bucket";
/// Not a Prometheus name: the p99 `/stats` prints for `cluster.X.upstream_rq_time`.
const RQ_TIME_P99: &str = "upstream_rq_time p99";
/// Istio's cluster tag (the whole name), then Envoy's default one.
const CLUSTER_LABELS: [&str; 2] = ["cluster_name", "envoy_cluster_name"];

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Envoy admin's `filter` (on the stat names, before tags are extracted): only the series
/// `status` reads, not a big gateway's thousands of others.
const ADMIN_FILTER: &str = r"canary_tagger_|^cluster\..*\.upstream_rq_(total|5xx|time)$";

impl Source {
    /// What the source is, for the output's heading.
    pub fn describe(&self) -> String {
        match self {
            Source::Admin(url) => format!("Envoy admin {url}"),
            Source::Prometheus(url) => format!("Prometheus {url}"),
            Source::Stats(path) if path == "-" => "stats from standard input".into(),
            Source::Stats(path) => format!("stats dump {path}"),
        }
    }

    /// One snapshot; `ago` reads Prometheus as it was that long ago (the other sources
    /// read only now).
    pub fn read(&self, ago: Option<Duration>) -> Result<Snapshot, SourceError> {
        match self {
            Source::Admin(url) => {
                let page = format!("{url}/stats/prometheus");
                let text = http_get(&page, &[("filter", ADMIN_FILTER)])?;
                let samples = parse_dump(&text).map_err(|reason| {
                    SourceError(format!("{page} is not Envoy's stats: {reason}"))
                })?;
                snapshot(&samples, &page)
            }
            Source::Prometheus(url) => read_prometheus(url, ago),
            Source::Stats(path) => {
                let text = read_dump(path)?;
                let name = if path == "-" { "standard input" } else { path };
                let samples =
                    parse_dump(&text).map_err(|reason| SourceError(format!("{name}: {reason}")))?;
                snapshot(&samples, name)
            }
        }
    }
}

/// A `--admin` or `--prometheus` URL: http only, without a trailing `/`.
pub fn base_url(flag: &str, url: &str) -> Result<String, String> {
    if url.starts_with("https://") {
        return Err(format!(
            "{flag} {url:?}: https is not supported; reach the port over plain http \
             (kubectl port-forward)"
        ));
    }
    match url.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "{flag} {url:?} is not an http URL (e.g. http://127.0.0.1:15000)"
        )),
    }
}

fn http_get(url: &str, query: &[(&str, &str)]) -> Result<String, SourceError> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.get(url);
    for (name, value) in query {
        request = request.query(*name, *value);
    }
    let mut response = request
        .call()
        .map_err(|error| SourceError(format!("cannot read {url}: {error}")))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|error| SourceError(format!("cannot read {url}: {error}")))?;
    if !status.is_success() {
        let first = body.lines().next().unwrap_or_default();
        return Err(SourceError(format!(
            "{url} answered {}: {}",
            status.as_u16(),
            first.chars().take(120).collect::<String>()
        )));
    }
    Ok(body)
}

fn read_dump(path: &str) -> Result<String, SourceError> {
    let mut text = String::new();
    let read = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::InvalidData => "not UTF-8 text".to_string(),
            _ => error.to_string(),
        };
        SourceError(format!("cannot read {path}: {reason}"))
    })?;
    Ok(text)
}

// ------------------------------------------------------------------------ dumps

/// The samples of a `/stats` or `/stats/prometheus` page, whichever it is.
pub fn parse_dump(text: &str) -> Result<Vec<Sample>, String> {
    let Some(first) = text.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return Err("empty".into());
    };
    if !text.ends_with('\n') {
        return Err("truncated (the last line is incomplete)".into());
    }
    if first.starts_with('#') || parse_sample_line(first).is_ok() {
        parse_prometheus_text(text)
    } else if first.contains(": ") {
        parse_flat_stats(text)
    } else {
        Err("neither /stats (`name: value`) nor /stats/prometheus text".into())
    }
}

/// `/stats`: `name: value` lines. Our series are under `wasmcustom.`; of the cluster stats
/// `upstream_rq_total`, `upstream_rq_5xx` and `upstream_rq_time` (a histogram line).
fn parse_flat_stats(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut cluster_lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line
            .split_once(": ")
            .filter(|(name, _)| !name.is_empty() && !name.contains(char::is_whitespace))
        else {
            return Err(format!("line {}: not `name: value`", index + 1));
        };
        let number = value.trim().parse::<u64>().ok();
        let histogram = value.starts_with("P0(") || value == "No recorded values";
        if number.is_none() && !histogram && !value.starts_with('"') {
            return Err(format!(
                "line {}: {value:?} is not a stat's value",
                index + 1
            ));
        }
        if name.starts_with("cluster.") {
            cluster_lines.push((name, value, number));
        } else if let Some(number) = number {
            samples.extend(our_flat_sample(name, number as f64));
        }
    }
    samples.extend(flat_cluster_samples(&cluster_lines));
    Ok(samples)
}

/// `upstream_rq_total`, `upstream_rq_5xx` and `upstream_rq_time` of each cluster. A
/// cluster is one with an `upstream_rq_total`: so that `cluster.X.external.upstream_rq_5xx`
/// (a sub-scope) is not taken for a cluster `X.external`.
fn flat_cluster_samples(lines: &[(&str, &str, Option<u64>)]) -> Vec<Sample> {
    let clusters: BTreeSet<&str> = lines
        .iter()
        .filter_map(|(name, _, _)| cluster_of(name, ".upstream_rq_total"))
        .collect();
    let mut samples = Vec::new();
    for (name, value, number) in lines {
        let sample = |suffix: &str| cluster_of(name, suffix).filter(|c| clusters.contains(c));
        match (
            number,
            sample(".upstream_rq_total"),
            sample(".upstream_rq_5xx"),
            sample(".upstream_rq_time"),
        ) {
            (Some(n), Some(cluster), _, _) => {
                samples.push(cluster_sample(RQ_TOTAL, cluster, *n as f64, None))
            }
            (Some(n), _, Some(cluster), _) => {
                samples.push(cluster_sample(RQ_XX, cluster, *n as f64, Some("5")))
            }
            (None, _, _, Some(cluster)) => {
                if let Some(p99) = flat_p99(value) {
                    samples.push(cluster_sample(RQ_TIME_P99, cluster, p99, None));
                }
            }
            _ => {}
        }
    }
    samples
}

fn cluster_of<'n>(name: &'n str, suffix: &str) -> Option<&'n str> {
    name.strip_prefix("cluster.")?
        .strip_suffix(suffix)
        .filter(|c| !c.is_empty())
}

fn cluster_sample(name: &str, cluster: &str, value: f64, class: Option<&str>) -> Sample {
    let mut labels = vec![("cluster_name".to_string(), cluster.to_string())];
    if let Some(class) = class {
        labels.push(("envoy_response_code_class".into(), class.into()));
    }
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

/// A counter or gauge of ours in `/stats` (under `wasmcustom.`).
fn our_flat_sample(name: &str, value: f64) -> Option<Sample> {
    let ParsedName { metric, labels } =
        metrics::parse_stat_name(name.strip_prefix("wasmcustom.").unwrap_or(name))?;
    Some(Sample {
        name: metric,
        labels,
        value,
    })
}

/// The cumulative P99 of a `/stats` histogram line: `P0(nan,0) ... P99(nan,1.05) ...`.
fn flat_p99(value: &str) -> Option<f64> {
    let quantile = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("P99("))?;
    let (_, cumulative) = quantile.strip_suffix(')')?.split_once(',')?;
    cumulative.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The Prometheus text format: `# ` comments and `name{label="value",...} value [ms]`.
fn parse_prometheus_text(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample =
            parse_sample_line(line).map_err(|reason| format!("line {}: {reason}", index + 1))?;
        samples.push(canonical(sample));
    }
    Ok(samples)
}

fn parse_sample_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("not a Prometheus sample".into());
    }
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("{name} has no value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: {value:?} is not a number"))?;
    if fields.nth(1).is_some() || !rest.starts_with(' ') {
        return Err(format!("{name}: not `name{{labels}} value`"));
    }
    Ok(Sample {
        name: name.into(),
        labels,
        value,
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

type Labels = Vec<(String, String)>;

/// `a="x",b="y\"z"}` → the labels and what follows the `}`.
fn parse_labels(mut rest: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest
            .split_once("=\"")
            .ok_or_else(|| String::from("a label without a quoted value"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((at, '"')) => break at,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("a label value does not end".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("a label value does not end".into()),
            }
        };
        labels.push((name.trim().to_string(), value));
        rest = after.get(end + 1..).unwrap_or_default();
    }
}

// ------------------------------------------------------------------------ Prometheus

/// Our series, and the cluster stats `status` reads, of every scraped pod.
const OUR_QUERY: &str = "{__name__=~\"canary_tagger_.+\"}";
const CLUSTER_QUERY: &str = "{__name__=~\"envoy_cluster_upstream_rq(_total|_xx|_time_bucket)?\"}";

fn read_prometheus(url: &str, ago: Option<Duration>) -> Result<Snapshot, SourceError> {
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

// ------------------------------------------------------------------------ snapshot

/// The samples of one page (or of every pod Prometheus scrapes, summed).
pub fn snapshot(samples: &[Sample], origin: &str) -> Result<Snapshot, SourceError> {
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
fn canonical(mut sample: Sample) -> Sample {
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
    fn a_sample_line_with_escaped_labels() {
        let sample =
            parse_sample_line(r#"canary_tagger_requests_total{rule="a\"b,c=d",version="v1"} 7"#)
                .unwrap();
        assert_eq!(sample.name, "canary_tagger_requests_total");
        assert_eq!(
            sample.labels,
            vec![
                ("rule".into(), "a\"b,c=d".into()),
                ("version".into(), "v1".into())
            ]
        );
        assert_eq!(sample.value, 7.0);
        assert!(parse_sample_line("canary_tagger_requests_total{} ").is_err());
        assert!(parse_sample_line(r#"x{a="b} 1"#).is_err());
    }

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

    #[test]
    fn base_urls_are_plain_http() {
        assert_eq!(
            base_url("--admin", "http://127.0.0.1:15000/").unwrap(),
            "http://127.0.0.1:15000"
        );
        assert!(base_url("--admin", "https://x")
            .unwrap_err()
            .contains("https is not supported"));
        assert!(base_url("--admin", "127.0.0.1:15000").is_err());
    }

    #[test]
    fn a_flat_histogram_line_gives_its_cumulative_p99() {
        assert_eq!(
            flat_p99("P0(nan,0) P25(nan,0) P99(nan,2.05) P99.5(nan,2.05) P100(nan,2.05)"),
            Some(2.05)
        );
        assert_eq!(flat_p99("No recorded values"), None);
    }
}
