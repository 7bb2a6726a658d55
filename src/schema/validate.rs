//! [`validate`] and [`compile_reporting_all`]: a document checked against the schema
//! [`plugin_config_schema`] builds, in the config compiler's words (the module above says
//! why ours).

use serde_json::{Map, Value};

use super::plugin_config_schema;
use crate::config::error::{Expected, Found, PathSegment, SchemaKeyword};
use crate::config::{
    self, CompiledConfig, ConfigError, ConfigErrors, Environment, ErrorKind, JsonPath,
};

/// Every way `instance` does not satisfy `schema` (the JSON Schema subset
/// [`plugin_config_schema`] uses: type, enum, const, properties, required,
/// additionalProperties, items, `$ref` into `$defs`, oneOf, anyOf, allOf, not, if/then/else,
/// minimum, maximum, minLength, maxLength, pattern, minItems, maxItems, uniqueItems).
/// Paths are written like the config compiler's (`rules[0].split`).
pub fn validate(schema: &Value, instance: &Value) -> Vec<ConfigError> {
    let mut findings = Vec::new();
    let validator = Validator {
        root: schema,
        mode: Mode::Full,
    };
    validator.check(schema, instance, &mut JsonPath::root(), &mut findings);
    findings.into_iter().map(Finding::into_error).collect()
}

/// Like [`CompiledConfig::from_json`], but reports every error, not only the first
/// structural one: every unknown field (with the closest known name), wrong type and missing
/// field, then — when those were only fields the compiler can do without — the semantic
/// errors too. Both report [`ErrorKind`]s, so where they find the same thing they say it
/// alike. `sticky_cookie.signing` reads its keys from `environment`.
pub fn compile_reporting_all(
    json: &[u8],
    environment: &dyn Environment,
) -> Result<CompiledConfig, ConfigErrors> {
    let first = match config::parse_dto(json) {
        Ok(dto) => return config::compile(dto, environment),
        Err(first) => first,
    };
    let Ok(document) = serde_json::from_slice::<Value>(json) else {
        return Err(ConfigErrors(vec![first]));
    };
    let schema = plugin_config_schema();
    let validator = Validator {
        root: &schema,
        mode: Mode::Structural,
    };
    let mut findings = Vec::new();
    validator.check(&schema, &document, &mut JsonPath::root(), &mut findings);
    if findings.is_empty() {
        // Something serde refuses that the walk does not model (a duplicate key, say).
        return Err(ConfigErrors(vec![first]));
    }
    let all_prunable = findings.iter().all(|f| f.prune);
    let mut pruned = document;
    for finding in findings.iter().filter(|f| f.prune).rev() {
        remove_at(&mut pruned, &finding.location);
    }
    // Without a misspelt field its object may lack an action or a condition kind; that
    // follows from the error already reported, so the compiler's word on it is left out.
    let pruned_parents: Vec<JsonPath> = findings
        .iter()
        .filter(|f| f.prune)
        .map(|f| f.location.parent())
        .collect();
    let mut errors: Vec<ConfigError> = findings.into_iter().map(Finding::into_error).collect();
    // The walk and serde agree on the common cases; when serde saw something else at another
    // place, say that too (but not serde_json's "expected value" for an enum given a number).
    let syntax = matches!(first.kind, ErrorKind::InvalidJson(_));
    if !errors.iter().any(|e| e.path == first.path) && !syntax {
        errors.insert(0, first);
    }
    if all_prunable {
        add_semantic_errors(&pruned, &pruned_parents, environment, &mut errors);
    }
    Err(ConfigErrors(errors))
}

/// The compiler's errors for the document without its pruned fields, except those about
/// the objects the pruned fields were in (they follow from the errors already reported).
fn add_semantic_errors(
    pruned: &Value,
    pruned_parents: &[JsonPath],
    environment: &dyn Environment,
    errors: &mut Vec<ConfigError>,
) {
    let Ok(pruned_json) = serde_json::to_vec(pruned) else {
        return;
    };
    match config::parse_dto(&pruned_json) {
        Ok(dto) => {
            if let Err(more) = config::compile(dto, environment) {
                errors.extend(
                    more.0
                        .into_iter()
                        .filter(|e| !pruned_parents.contains(&e.path)),
                );
            }
        }
        Err(more) => {
            if !errors.iter().any(|e| e.path == more.path) {
                errors.push(more);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every keyword.
    Full,
    /// What serde checks when it deserializes the DTOs: types, enums, unknown and missing
    /// fields, unsigned integer ranges; `null` for a field that may be left out is "left out".
    Structural,
}

struct Finding {
    /// The value at fault.
    location: JsonPath,
    /// The path reported (an unknown field is reported at its parent, as serde does).
    path: JsonPath,
    kind: ErrorKind,
    /// Removing `location` leaves a document the compiler can still judge.
    prune: bool,
}

impl Finding {
    fn into_error(self) -> ConfigError {
        ConfigError::new(self.path, self.kind)
    }
}

fn remove_at(document: &mut Value, location: &JsonPath) {
    let Some((last, parents)) = location.segments().split_last() else {
        return;
    };
    let mut node = document;
    for segment in parents {
        let next = match (segment, node) {
            (PathSegment::Key(key), Value::Object(object)) => object.get_mut(key),
            (PathSegment::Index(index), Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(child) => node = child,
            None => return,
        }
    }
    if let (PathSegment::Key(key), Value::Object(object)) = (last, node) {
        object.shift_remove(key);
    }
}

struct Validator<'s> {
    root: &'s Value,
    mode: Mode,
}

impl<'s> Validator<'s> {
    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let name = reference.strip_prefix("#/$defs/")?;
        self.root.get("$defs")?.get(name)
    }

    fn report(
        &self,
        findings: &mut Vec<Finding>,
        location: &JsonPath,
        kind: ErrorKind,
        prune: bool,
    ) {
        findings.push(Finding {
            location: location.clone(),
            path: location.clone(),
            kind,
            prune,
        });
    }

    /// Appends to `findings` every way `value` (at `location`) fails `schema`.
    fn check(
        &self,
        schema: &'s Value,
        value: &Value,
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
    ) {
        self.check_value(schema, value, location, findings, false);
    }

    /// `optional`: `value` is a property that may be left out, so a wrong type there can be
    /// pruned and the rest of the document still judged by the compiler.
    fn check_value(
        &self,
        schema: &'s Value,
        value: &Value,
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
        optional: bool,
    ) {
        let object = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                let kind = SchemaKeyword::NoValueAllowed.into();
                self.report(findings, location, kind, optional);
                return;
            }
            Value::Object(object) => object,
            _ => return,
        };
        if let Some(target) = object
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
        {
            let before = findings.len();
            self.check_value(target, value, location, findings, optional);
            if findings.len() > before {
                return;
            }
        }
        if let Some(expected) = object.get("type") {
            if let Some(kind) = self.type_mismatch(object, expected, value) {
                let kind = match object.get("enum") {
                    Some(Value::Array(variants)) => unknown_variant(variants, value),
                    _ => kind,
                };
                self.report(findings, location, kind, optional);
                return;
            }
        }
        if let Some(Value::Array(variants)) = object.get("enum") {
            if !variants.contains(value) {
                self.report(
                    findings,
                    location,
                    unknown_variant(variants, value),
                    optional,
                );
                return;
            }
        }
        match value {
            Value::Object(members) => self.check_object(object, members, location, findings),
            Value::Array(items) => self.check_array(object, items, location, findings),
            _ => {}
        }
        if self.mode == Mode::Full {
            self.check_full(object, value, location, findings);
        }
    }

    fn type_mismatch(
        &self,
        schema: &Map<String, Value>,
        expected: &Value,
        value: &Value,
    ) -> Option<ErrorKind> {
        let unsigned = match schema.get("format").and_then(Value::as_str) {
            Some("uint32") => Some(u64::from(u32::MAX)),
            Some("uint64") => Some(u64::MAX),
            _ => None,
        };
        let types: Vec<&str> = match expected {
            Value::String(single) => vec![single.as_str()],
            Value::Array(several) => several.iter().filter_map(Value::as_str).collect(),
            _ => return None,
        };
        let matches = |t: &str| match (t, value) {
            ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("string", Value::String(_))
            | ("array", Value::Array(_))
            | ("object", Value::Object(_))
            | ("number", Value::Number(_)) => true,
            ("integer", Value::Number(n)) if self.mode == Mode::Structural => match unsigned {
                Some(max) => n.as_u64().is_some_and(|u| u <= max),
                None => n.is_i64() || n.is_u64(),
            },
            ("integer", Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        };
        if types.iter().any(|t| matches(t)) {
            return None;
        }
        let first = types.first().copied().unwrap_or("value");
        let expected = match first {
            "string" => Expected::String,
            "boolean" => Expected::Boolean,
            "array" => Expected::Array,
            "object" => Expected::Object,
            "number" => Expected::Number,
            "integer" if unsigned.is_some() => Expected::NonNegativeInteger,
            "integer" => Expected::Integer,
            "null" => Expected::Null,
            _ => Expected::Value,
        };
        let found = Found::from(value);
        // serde: a negative or too large integer is the right type with an invalid value.
        Some(match value {
            Value::Number(n) if first == "integer" && (n.is_i64() || n.is_u64()) => {
                ErrorKind::InvalidValue { found, expected }
            }
            _ => ErrorKind::InvalidType { found, expected },
        })
    }

    fn check_object(
        &self,
        schema: &'s Map<String, Value>,
        members: &Map<String, Value>,
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, member) in members {
            let is_required = required.contains(&key.as_str());
            match properties.and_then(|p| p.get(key)) {
                Some(_) if member.is_null() && !is_required && self.mode == Mode::Structural => {}
                Some(property) => {
                    location.push(PathSegment::Key(key.clone()));
                    self.check_value(property, member, location, findings, !is_required);
                    location.pop();
                }
                None if closed => {
                    let known: Vec<String> = properties
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    findings.push(Finding {
                        location: location.key(key),
                        path: location.clone(),
                        kind: ErrorKind::UnknownField {
                            field: key.clone(),
                            known,
                        },
                        prune: true,
                    });
                }
                None => {}
            }
        }
        for name in required {
            if !members.contains_key(name) {
                findings.push(Finding {
                    location: location.key(name),
                    path: location.key(name),
                    kind: ErrorKind::MissingField,
                    prune: false,
                });
            }
        }
    }

    fn check_array(
        &self,
        schema: &'s Map<String, Value>,
        items: &[Value],
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
    ) {
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        for (index, item) in items.iter().enumerate() {
            location.push(PathSegment::Index(index));
            self.check_value(item_schema, item, location, findings, false);
            location.pop();
        }
    }

    /// The keywords beyond serde's view: values, sizes, patterns and the applicators.
    fn check_full(
        &self,
        schema: &'s Map<String, Value>,
        value: &Value,
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
    ) {
        let mut report = |keyword: SchemaKeyword| {
            self.report(findings, location, keyword.into(), false);
        };
        if let Some(constant) = schema.get("const") {
            if constant != value {
                report(SchemaKeyword::NotConst(constant.to_string()));
            }
        }
        match value {
            Value::String(text) => string_keywords(schema, text, &mut report),
            Value::Number(number) => number_keywords(schema, number, &mut report),
            Value::Array(items) => array_keywords(schema, items, &mut report),
            _ => {}
        }
        self.check_applicators(schema, value, location, findings);
    }

    fn holds(&self, schema: &'s Value, value: &Value, location: &JsonPath) -> bool {
        let mut scratch = Vec::new();
        self.check(schema, value, &mut location.clone(), &mut scratch);
        scratch.is_empty()
    }

    fn check_applicators(
        &self,
        schema: &'s Map<String, Value>,
        value: &Value,
        location: &mut JsonPath,
        findings: &mut Vec<Finding>,
    ) {
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for sub in all {
                self.check(sub, value, location, findings);
            }
        }
        if let Some(Value::Array(any)) = schema.get("anyOf") {
            if !any.iter().any(|sub| self.holds(sub, value, location)) {
                let kind = SchemaKeyword::NoneOf(any.iter().map(describe).collect()).into();
                self.report(findings, location, kind, false);
            }
        }
        if let Some(Value::Array(one)) = schema.get("oneOf") {
            let holding: Vec<&Value> = one
                .iter()
                .filter(|sub| self.holds(sub, value, location))
                .collect();
            if holding.len() != 1 {
                let kind = ErrorKind::ExactlyOne {
                    noun: None,
                    choices: one.iter().map(describe).collect(),
                    found: holding.into_iter().map(describe).collect(),
                };
                self.report(findings, location, kind, false);
            }
        }
        if let Some(not) = schema.get("not") {
            if self.holds(not, value, location) {
                let kind = SchemaKeyword::MustNotHave(describe(not)).into();
                self.report(findings, location, kind, false);
            }
        }
        if let Some(condition) = schema.get("if") {
            let branch = if self.holds(condition, value, location) {
                schema.get("then")
            } else {
                schema.get("else")
            };
            if let Some(branch) = branch {
                self.check(branch, value, location, findings);
            }
        }
    }
}

/// `minLength`, `maxLength` and `pattern` of a string.
fn string_keywords(
    schema: &Map<String, Value>,
    text: &str,
    report: &mut impl FnMut(SchemaKeyword),
) {
    let length = text.chars().count();
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if u64::try_from(length).unwrap_or(u64::MAX) < min {
            report(SchemaKeyword::TooShort(min));
        }
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if u64::try_from(length).unwrap_or(u64::MAX) > max {
            report(SchemaKeyword::TooLong(max));
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(regex) if !regex.is_match(text) => {
                report(SchemaKeyword::PatternMismatch {
                    text: text.to_string(),
                    pattern: pattern.to_string(),
                });
            }
            Ok(_) => {}
            Err(error) => report(SchemaKeyword::InvalidSchemaPattern {
                pattern: pattern.to_string(),
                error: error.to_string(),
            }),
        }
    }
}

/// `minimum` and `maximum` of a number.
fn number_keywords(
    schema: &Map<String, Value>,
    number: &serde_json::Number,
    report: &mut impl FnMut(SchemaKeyword),
) {
    let n = number.as_f64().unwrap_or(f64::NAN);
    if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64) {
        if n < minimum || n.is_nan() {
            let value = number.clone();
            report(SchemaKeyword::BelowMinimum { value, minimum });
        }
    }
    if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64) {
        if n > maximum || n.is_nan() {
            let value = number.clone();
            report(SchemaKeyword::AboveMaximum { value, maximum });
        }
    }
}

/// `minItems`, `maxItems` and `uniqueItems` of an array.
fn array_keywords(
    schema: &Map<String, Value>,
    items: &[Value],
    report: &mut impl FnMut(SchemaKeyword),
) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
        if u64::try_from(items.len()).unwrap_or(u64::MAX) < min {
            report(SchemaKeyword::TooFewItems(min));
        }
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if u64::try_from(items.len()).unwrap_or(u64::MAX) > max {
            report(SchemaKeyword::TooManyItems(max));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        for (i, item) in items.iter().enumerate() {
            if items.iter().take(i).any(|earlier| earlier == item) {
                let item = item.to_string();
                report(SchemaKeyword::ListedTwice { index: i, item });
            }
        }
    }
}

/// What a subschema asks for, for messages: its required fields, or its title.
fn describe(schema: &Value) -> String {
    if let Some(Value::Array(names)) = schema.get("required") {
        return names
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" with ");
    }
    if let Some(Value::Array(any)) = schema.get("anyOf") {
        let alternatives: Vec<String> = any.iter().map(describe).collect();
        return format!("any of {}", alternatives.join(", "));
    }
    match schema.get("title").and_then(Value::as_str) {
        Some(title) => title.to_string(),
        None => schema.to_string(),
    }
}

/// A value outside an enum's variants: an unknown variant, or not a string at all.
fn unknown_variant(variants: &[Value], value: &Value) -> ErrorKind {
    let expected: Vec<String> = variants
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    match value {
        Value::String(s) => ErrorKind::UnknownVariant {
            found: s.clone(),
            expected,
        },
        other => ErrorKind::InvalidType {
            found: Found::from(other),
            expected: Expected::OneOf(expected),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_errors(json: &str) -> Vec<String> {
        match compile_reporting_all(json.as_bytes(), &config::NoEnvironment) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn all_structural_errors_are_reported() {
        let json = r#"{
            "versions": ["v1", "v2"], "default_version": "v1", "tag_headr": "x",
            "client_ip": {"from": "xf"},
            "rules": [
                {"name": "a", "versoin": "v2"},
                {"name": "b", "match": {"header": "ua", "regx": ".*"}, "version": 2},
                {"name": "c", "split": {"weights": [{"version": "v1", "percent": "100"}]}}
            ],
            "sticky_cookie": {"max_age_s": -1}
        }"#;
        assert_eq!(
            all_errors(json),
            vec![
                r#"$: unknown field "tag_headr" (did you mean "tag_header"?)"#,
                "client_ip.from: unknown variant `xf`, expected `peer` or `xff`",
                r#"rules[0]: unknown field "versoin" (did you mean "version"?)"#,
                r#"rules[1].match: unknown field "regx" (did you mean "regex"?)"#,
                "rules[1].version: invalid type: integer `2`, expected a string",
                r#"rules[2].split.weights[0].percent: invalid type: string "100", expected a number"#,
                "sticky_cookie.max_age_s: invalid value: integer `-1`, expected a non-negative integer",
                "sticky_cookie.name: required field is missing",
            ]
        );
    }

    #[test]
    fn unknown_fields_do_not_hide_semantic_errors() {
        let json = r#"{"versions": ["v1", "v2"], "default_version": "v3", "colour": "red",
            "rules": [{"name": "a", "versoin": "v2", "split": {"weights": [{"version": "v1", "percent": 90}]}}]}"#;
        assert_eq!(
            all_errors(json),
            vec![
                "$: unknown field \"colour\"; expected one of schema, tag_header, versions, default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, response_header, baggage, tracestate, mode, restore, trace_memory",
                r#"rules[0]: unknown field "versoin" (did you mean "version"?)"#,
                r#"default_version: unknown version "v3"; versions are v1, v2"#,
                "rules[0].split.weights: percents sum to 90, expected 100",
            ]
        );
    }

    #[test]
    fn null_counts_as_left_out_for_optional_fields() {
        let json = r#"{"versions": ["v1"], "default_version": "v1", "tag_header": null, "client_ip": null}"#;
        assert!(all_errors(json).is_empty());
        // But not where serde wants a value: the library's own error.
        let json = r#"{"versions": ["v1"], "default_version": "v1", "baggage": null, "x": 1}"#;
        assert_eq!(
            all_errors(json),
            vec![
                "baggage: invalid type: null, expected a boolean",
                "$: unknown field \"x\"; expected one of schema, tag_header, versions, default_version, client_ip, trusted_tag_sources, normalize, rules, sticky_cookie, response_header, baggage, tracestate, mode, restore, trace_memory",
            ]
        );
    }

    #[test]
    fn syntax_errors_and_quirks_fall_back_to_the_library() {
        assert_eq!(
            all_errors("{"),
            vec!["$: invalid JSON: EOF while parsing an object at line 1 column 1"]
        );
        assert_eq!(
            all_errors(r#"{"versions": ["v1"], "default_version": "v1", "versions": ["v2"]}"#),
            vec!["$: duplicate field `versions`"]
        );
        // serde_json says "expected value" for an enum given a number; the walk says more.
        assert_eq!(
            all_errors(
                r#"{"versions": ["v1"], "default_version": "v1", "client_ip": {"from": 1}}"#
            ),
            vec!["client_ip.from: invalid type: integer `1`, expected `peer` or `xff`"]
        );
    }

    #[test]
    fn full_validation_states_the_expressible_rules() {
        let schema = plugin_config_schema();
        let errors = |json: &str| -> Vec<String> {
            let value: Value = serde_json::from_str(json).unwrap();
            validate(&schema, &value)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(errors(include_str!("../../fixtures/configs/spec-example.json")).is_empty());
        assert_eq!(
            errors(r#"{"versions": [], "default_version": "v 1", "schema": 2}"#),
            vec![
                "versions: must have at least 1 item(s)",
                r#"default_version: "v 1" does not match ^[A-Za-z0-9._-]{1,63}$"#,
                "schema: must be 1",
            ]
        );
        assert_eq!(
            errors(r#"{"versions": ["v1"], "default_version": "v1", "rules": [
                {"name": "a", "match": {"header": "x", "cookie": "y", "exact": "1"}, "version": "v1"},
                {"name": "b", "match": {"header": "x", "exact": "1", "prefix": "2"}, "version": "v1"},
                {"name": "c", "match": {"source_ip": ["10.0.0.0/8"], "exact": "1"}, "version": "v1"},
                {"name": "d", "match": {"header": "x", "present": true, "ignore_case": true}, "version": "v1"},
                {"name": "e", "version": "v1", "version_from": "header:x"},
                {"name": "f", "split": {"weights": [{"version": "v1", "percent": 120}], "key": ["ip"]}}
            ]}"#),
            vec![
                "rules[0].match: expected exactly one of header, cookie, query, source_ip, all, any, not; found header and cookie",
                "rules[1].match: expected exactly one of exact, prefix, suffix, contains, regex, present; found exact and prefix",
                "rules[2].match: must not have any of exact, prefix, suffix, contains, regex, present, ignore_case",
                "rules[3].match: must not have present with ignore_case",
                "rules[4]: expected exactly one of version, version_from, split; found version and version_from",
                "rules[5].split.weights[0].percent: 120 is more than the maximum 100",
                r#"rules[5].split.key[0]: "ip" does not match ^(source_ip|header:(:[A-Za-z]+|[!#$%&'*+.^_`|~0-9A-Za-z-]+)|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+|query:.+)$"#,
            ]
        );
        assert_eq!(
            errors(
                r#"{"versions": ["v1"], "default_version": "v1", "client_ip": {"from": "peer", "trusted_hops": 1}}"#
            ),
            vec!["client_ip: must not have trusted_hops"]
        );
    }
}
