//! Conditions (`match`, `when`) and what they read: value sources, header names, string
//! operators and their regexes.

use super::{compile_cidrs, exactly_one, Errors, Known};
use crate::config::dto::{ConditionDto, ConditionKind, OperatorDto};
use crate::config::error::{ErrorKind, JsonPath, ListOf};
use crate::config::PSEUDO_HEADERS;
use crate::http;
use crate::matcher::{self, Condition, LiteralKind, StringMatch, ValueSource};

const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The forms a value source may take: `KIND:NAME` of these kinds (in the order messages
/// list them), and whether also `source_ip`.
pub(super) struct SourceForms {
    kinds: &'static [&'static str],
    source_ip: bool,
}

pub(super) const VERSION_FROM_FORMS: SourceForms = SourceForms {
    kinds: &["header", "cookie"],
    source_ip: false,
};
pub(super) const SPLIT_KEY_FORMS: SourceForms = SourceForms {
    kinds: &["cookie", "header", "query"],
    source_ip: true,
};

/// Parses `header:NAME` / `cookie:NAME` / `query:NAME` of the kinds `forms` allows.
pub(super) fn value_source(
    text: &str,
    path: &JsonPath,
    forms: &SourceForms,
    known: &Known,
    errors: &mut Errors,
) -> Option<ValueSource> {
    let Some((kind, name)) = text
        .split_once(':')
        .filter(|(kind, _)| forms.kinds.contains(kind))
    else {
        let kind = ErrorKind::InvalidValueSource {
            text: text.to_string(),
            allowed: forms.kinds,
            source_ip: forms.source_ip,
        };
        errors.add(path.clone(), kind);
        return None;
    };
    if name.is_empty() {
        let kind = ErrorKind::SourceNamesNothing {
            text: text.to_string(),
            kind: kind.to_string(),
        };
        errors.add(path.clone(), kind);
        return None;
    }
    match kind {
        "header" => {
            let name = header_name(name, path, true, errors);
            if name == known.tag_header {
                errors.add(path.clone(), ErrorKind::TagHeaderAsSource);
            }
            Some(ValueSource::Header(name))
        }
        "cookie" => {
            if !http::is_token(name) {
                errors.add(path.clone(), ErrorKind::InvalidCookieName(name.to_string()));
            }
            Some(ValueSource::Cookie(name.to_string()))
        }
        _ => Some(ValueSource::Query(name.to_string())),
    }
}

/// A header name, lower-cased. Pseudo-headers only where a request is read (`allow_pseudo`).
pub(super) fn header_name(
    name: &str,
    path: &JsonPath,
    allow_pseudo: bool,
    errors: &mut Errors,
) -> String {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() {
        errors.add(path.clone(), ErrorKind::EmptyHeaderName);
    } else if lower.starts_with(':') {
        if !allow_pseudo {
            errors.add(
                path.clone(),
                ErrorKind::PseudoHeaderNotAllowed(name.to_string()),
            );
        } else if !PSEUDO_HEADERS.contains(&lower.as_str()) {
            errors.add(
                path.clone(),
                ErrorKind::UnknownPseudoHeader(name.to_string()),
            );
        }
    } else if !http::is_token(&lower) {
        errors.add(path.clone(), ErrorKind::InvalidHeaderName(name.to_string()));
    }
    lower
}

/// Compiles a `match` object; `None` (with errors recorded) when it is not valid.
pub(super) fn compile_condition(
    c: &ConditionDto,
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Option<Condition> {
    let (kind_name, kind) = exactly_one(None, &ConditionDto::KINDS, c.kinds())
        .map_err(|kind| errors.add(path.clone(), kind))
        .ok()?;
    reject_operators(c, path, kind_name, &kind, errors)?;
    compile_kind(c, path, kind_name, kind, known, errors)
}

/// The condition of `c`'s one kind, `kind_name`, with what that kind reads (at its field
/// under `path`) checked.
fn compile_kind(
    c: &ConditionDto,
    path: &JsonPath,
    kind_name: &'static str,
    kind: ConditionKind<'_>,
    known: &Known,
    errors: &mut Errors,
) -> Option<Condition> {
    let field_path = path.key(kind_name);
    match kind {
        ConditionKind::Header(name) => {
            let name = header_name(name, &field_path, true, errors);
            if name == known.tag_header {
                errors.add(field_path, ErrorKind::MatchesTagHeader);
            }
            value_condition(c, path, ValueSource::Header(name), errors)
        }
        ConditionKind::Cookie(name) => {
            if !http::is_token(name) {
                errors.add(field_path, ErrorKind::InvalidCookieName(name.to_string()));
            }
            value_condition(c, path, ValueSource::Cookie(name.to_string()), errors)
        }
        ConditionKind::Query(name) => {
            if name.is_empty() {
                errors.add(field_path, ErrorKind::EmptyQueryName);
            }
            value_condition(c, path, ValueSource::Query(name.to_string()), errors)
        }
        ConditionKind::SourceIp(ranges) => {
            if ranges.is_empty() {
                errors.add(
                    field_path.clone(),
                    ErrorKind::EmptyList(ListOf::AddressOrRange),
                );
            }
            Some(Condition::SourceIp(compile_cidrs(
                ranges,
                &field_path,
                errors,
            )))
        }
        ConditionKind::All(list) => Some(Condition::All(compile_conditions(
            list,
            &field_path,
            known,
            errors,
        ))),
        ConditionKind::Any(list) => Some(Condition::Any(compile_conditions(
            list,
            &field_path,
            known,
            errors,
        ))),
        ConditionKind::Not(inner) => {
            let inner = compile_condition(inner, &field_path, known, errors)?;
            Some(Condition::Not(Box::new(inner)))
        }
    }
}

/// A kind that reads no value (`source_ip`, `all`, `any`, `not`) takes no operator and no
/// `ignore_case`: `None` (with the error recorded) when `c` gives one.
fn reject_operators(
    c: &ConditionDto,
    path: &JsonPath,
    kind_name: &'static str,
    kind: &ConditionKind,
    errors: &mut Errors,
) -> Option<()> {
    let takes_operator = matches!(
        kind,
        ConditionKind::Header(_) | ConditionKind::Cookie(_) | ConditionKind::Query(_)
    );
    if !takes_operator {
        let given = ConditionDto::OPERATORS.iter().zip(c.operators());
        if let Some((first, _)) = given.into_iter().find(|(_, op)| op.is_some()) {
            errors.add(path.key(first), ErrorKind::OperatorsDoNotApply(kind_name));
            return None;
        }
        if c.ignore_case.is_some() {
            errors.add(path.key("ignore_case"), ErrorKind::DoesNotApply(kind_name));
            return None;
        }
    }
    Some(())
}

/// A header, cookie or query condition: `source` compared by `c`'s operator.
fn value_condition(
    c: &ConditionDto,
    path: &JsonPath,
    source: ValueSource,
    errors: &mut Errors,
) -> Option<Condition> {
    let op = compile_operator(c, path, errors)?;
    Some(Condition::Value { source, op })
}

/// The items of an `all` or `any` list.
fn compile_conditions(
    list: &[ConditionDto],
    path: &JsonPath,
    known: &Known,
    errors: &mut Errors,
) -> Vec<Condition> {
    if list.is_empty() {
        errors.add(path.clone(), ErrorKind::EmptyList(ListOf::Condition));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, inner)| compile_condition(inner, &path.index(i), known, errors))
        .collect()
}

fn compile_operator(c: &ConditionDto, path: &JsonPath, errors: &mut Errors) -> Option<StringMatch> {
    let (operator_name, operator) =
        exactly_one(Some("operator"), &ConditionDto::OPERATORS, c.operators())
            .map_err(|kind| errors.add(path.clone(), kind))
            .ok()?;
    let ignore_case = c.ignore_case.unwrap_or(false);
    let literal = |kind, needle| Some(StringMatch::literal(kind, needle, ignore_case));
    match operator {
        OperatorDto::Present(present) => {
            if c.ignore_case.is_some() {
                errors.add(
                    path.key("ignore_case"),
                    ErrorKind::DoesNotApply(operator_name),
                );
                return None;
            }
            Some(StringMatch::Present(present))
        }
        OperatorDto::Regex(pattern) => {
            match matcher::compile_regex(pattern, ignore_case, REGEX_SIZE_LIMIT) {
                Ok(op) => Some(op),
                Err(reason) => {
                    errors.add(path.key(operator_name), ErrorKind::InvalidRegex(reason));
                    None
                }
            }
        }
        OperatorDto::Exact(needle) => literal(LiteralKind::Exact, needle),
        OperatorDto::Prefix(needle) => literal(LiteralKind::Prefix, needle),
        OperatorDto::Suffix(needle) => literal(LiteralKind::Suffix, needle),
        OperatorDto::Contains(needle) => literal(LiteralKind::Contains, needle),
    }
}
