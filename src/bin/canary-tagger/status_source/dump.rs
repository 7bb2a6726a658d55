//! A saved page, or the admin's: the flat `/stats` text and the Prometheus text format,
//! parsed into samples.

use std::collections::BTreeSet;

use canary_tagger::metrics::{self, ParsedName};

use super::{canonical, Sample, RQ_TIME_P99, RQ_TOTAL, RQ_XX};

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

pub(super) fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

pub(super) type Labels = Vec<(String, String)>;

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
    fn a_flat_histogram_line_gives_its_cumulative_p99() {
        assert_eq!(
            flat_p99("P0(nan,0) P25(nan,0) P99(nan,2.05) P99.5(nan,2.05) P100(nan,2.05)"),
            Some(2.05)
        );
        assert_eq!(flat_p99("No recorded values"), None);
    }
}
