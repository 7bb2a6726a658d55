//! `rules`: each rule's name, `match` and action: a fixed version, `version_from`, or a
//! `split` with its weights turned into bucket ranges and its `ramp`.

use std::collections::HashSet;

use super::conditions::{compile_condition, value_source, SPLIT_KEY_FORMS, VERSION_FROM_FORMS};
use super::{exactly_one, Errors, Known};
use crate::config::dto::{ActionDto, RampDto, RuleDto, SplitDto};
use crate::config::error::{ErrorKind, JsonPath, ListOf};
use crate::config::{Action, KeySource, Rule, Split, MAX_NAME_LEN};
use crate::ramp::{parse_rfc3339_utc, Ramp};

pub(super) fn compile_rule(
    rule: &RuleDto,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Option<Rule> {
    if rule.name.is_empty() {
        errors.add(path.key("name"), ErrorKind::Empty);
    } else if rule.name.len() > MAX_NAME_LEN || !rule.name.bytes().all(|b| b.is_ascii_graphic()) {
        errors.add(
            path.key("name"),
            ErrorKind::InvalidRuleName(rule.name.clone()),
        );
    }
    let condition = rule
        .condition
        .as_ref()
        .and_then(|c| compile_condition(c, &path.key("match"), known, errors));

    let action = match exactly_one(Some("action"), &RuleDto::ACTIONS, rule.actions()) {
        Err(kind) => {
            errors.add(path.clone(), kind);
            return None;
        }
        Ok((_, ActionDto::Version(version))) => {
            Action::Fixed(known.version(version, &path.key("version"), errors))
        }
        Ok((_, ActionDto::VersionFrom(source))) => {
            let source_path = path.key("version_from");
            let source = value_source(source, &source_path, &VERSION_FROM_FORMS, known, errors)?;
            Action::VersionFrom(source)
        }
        Ok((_, ActionDto::Split(split))) => Action::Split(compile_split(
            split,
            &rule.name,
            &path.key("split"),
            known,
            errors,
        )),
    };
    Some(Rule {
        name: rule.name.clone(),
        condition,
        action,
    })
}

fn compile_split(
    split: &SplitDto,
    rule_name: &str,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Split {
    let weights_path = path.key("weights");
    if split.weights.is_empty() {
        errors.add(weights_path.clone(), ErrorKind::EmptyList(ListOf::Version));
    }
    let mut weights = Vec::with_capacity(split.weights.len());
    let mut seen = HashSet::new();
    let mut end: u32 = 0;
    for (i, weight) in split.weights.iter().enumerate() {
        let weight_path = weights_path.index(i);
        let version_path = weight_path.key("version");
        let version = known.version(&weight.version, &version_path, errors);
        if !seen.insert(weight.version.as_str()) {
            errors.add(
                version_path,
                ErrorKind::VersionListedTwice(weight.version.clone()),
            );
        }
        let buckets = match percent_to_buckets(weight.percent) {
            Ok(buckets) => buckets,
            Err(kind) => {
                errors.add(weight_path.key("percent"), kind);
                0
            }
        };
        end += u32::from(buckets);
        weights.push((buckets, version));
    }
    if !split.weights.is_empty()
        && end != u32::from(crate::hash::BUCKETS)
        && errors_are_only_sum(split)
    {
        errors.add(weights_path, ErrorKind::PercentSum(end));
    }
    let keys = split
        .key
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            if key == "source_ip" {
                return Some(KeySource::SourceIp);
            }
            let key_path = path.key("key").index(i);
            value_source(key, &key_path, &SPLIT_KEY_FORMS, known, errors).map(KeySource::Value)
        })
        .collect();
    let ramp = split.ramp.as_ref().and_then(|ramp| {
        let first = split.weights.first().map(|w| w.percent);
        compile_ramp(ramp, first, &path.key("ramp"), errors)
    });
    let salt = split.salt.clone().unwrap_or_else(|| rule_name.to_string());
    Split::new(weights, keys, salt, ramp)
}

/// `split.ramp`; `first` is the first weight's percent as written.
fn compile_ramp(
    ramp: &RampDto,
    first: Option<f64>,
    path: &JsonPath,
    errors: &mut Errors,
) -> Option<Ramp> {
    let start = match parse_rfc3339_utc(&ramp.start) {
        Ok(start) => Some(start),
        Err(error) => {
            let text = ramp.start.clone();
            errors.add(path.key("start"), ErrorKind::InvalidTime { text, error });
            None
        }
    };
    if ramp.duration_s < 1 {
        errors.add(path.key("duration_s"), ErrorKind::ZeroRampDuration);
    }
    let to = match percent_to_buckets(ramp.to) {
        Ok(to) => Some(to),
        Err(kind) => {
            errors.add(path.key("to"), kind);
            None
        }
    };
    let first_buckets = first.and_then(|percent| percent_to_buckets(percent).ok());
    if let (Some(to), Some(first), Some(first_percent)) = (to, first_buckets, first) {
        if to < first {
            let kind = ErrorKind::RampBelowFirstWeight {
                to: ramp.to,
                first: first_percent,
            };
            errors.add(path.key("to"), kind);
        }
    }
    Some(Ramp {
        start: start?,
        duration_s: ramp.duration_s,
        to: to?,
    })
}

/// The sum is only meaningful when every percent is itself valid.
fn errors_are_only_sum(split: &SplitDto) -> bool {
    split
        .weights
        .iter()
        .all(|w| percent_to_buckets(w.percent).is_ok())
}

/// A percent with at most two decimals, as a number of buckets (1 bucket = 0.01 %).
fn percent_to_buckets(percent: f64) -> Result<u16, ErrorKind> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(ErrorKind::PercentOutOfRange(percent));
    }
    let scaled = percent * 100.0;
    let rounded = scaled.round();
    if (scaled - rounded).abs() > 1e-6 {
        return Err(ErrorKind::PercentTooPrecise(percent));
    }
    // In 0..=10000 after the checks above, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(rounded as u16)
}
