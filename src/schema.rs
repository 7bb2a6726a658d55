//! The plugin configuration's JSON Schema (draft 2020-12), generated from the config DTOs,
//! and a validator for the part of JSON Schema that schema uses.
//!
//! - [`plugin_config_schema`] is what `canary-tagger schema` prints and what
//!   `envoyfilter/config.schema.json` holds: the DTOs' fields and types (derived with
//!   `schemars`, so a new field cannot be forgotten), plus the rules JSON Schema can state —
//!   exactly one kind and one operator per `match`, exactly one action per rule, version and
//!   rule-name patterns, percent ranges. Rules it cannot state (a percent sum, a version
//!   that must be listed in `versions`) stay with the config compiler.
//! - [`validate`] checks a document against that schema. Ours, not the `jsonschema` crate:
//!   `canary-tagger validate` must report in the filter's own words — the same
//!   [`ErrorKind`]s at the same paths (`rules[0].split`) as the module's serde pass, with
//!   the closest known field name — and a general validator's messages and instance
//!   pointers (`/rules/0/split`) would need a translation layer as long as this subset
//!   (the keywords the schema emits). The crate still checks our work: tests/cli.rs has it
//!   validate the committed schema as draft 2020-12 and agree with ours on the example
//!   configs and on every configuration the schema must reject.
//! - [`compile_reporting_all`] is `canary-tagger validate`'s compiler: the library's serde
//!   pass stops at the first structural error, so this walks the JSON against the schema's
//!   structural keywords to find every unknown field, wrong type and missing field — as the
//!   same [`ErrorKind`]s the library's serde pass reports, so in the same words — and then
//!   adds the compiler's semantic errors.
//!
//! This file builds the schema; `schema/validate.rs` holds the validator and
//! `compile_reporting_all`, which walk documents against it.

use serde_json::{json, Map, Value};

mod validate;
pub use validate::{compile_reporting_all, validate};

use crate::config::dto::{ConditionDto, RuleDto};
use crate::config::{self, PluginConfigDto};
use crate::http;
use crate::signing;

/// The `pattern`s of the schema, built from the rules the config compiler checks.
struct Patterns {
    /// A version name: 1-63 of `A-Z a-z 0-9 . _ -`.
    version: String,
    /// A rule name: 1-63 visible ASCII characters.
    rule_name: String,
    /// An HTTP token: header and cookie names.
    token: String,
    /// A request header a condition may read: a token or a pseudo-header.
    match_header: String,
    version_from: String,
    split_key: String,
}

impl Patterns {
    fn new() -> Patterns {
        let max = config::MAX_NAME_LEN;
        let token = format!("{}+", http::token_class());
        let header = format!("(:[A-Za-z]+|{token})");
        Patterns {
            version: format!("^[A-Za-z0-9{}]{{1,{max}}}$", config::VERSION_PUNCTUATION),
            rule_name: format!("^[!-~]{{1,{max}}}$"),
            match_header: format!("^{header}$"),
            version_from: format!("^(header:{header}|cookie:{token})$"),
            split_key: format!("^(source_ip|header:{header}|cookie:{token}|query:.+)$"),
            token: format!("^{token}$"),
        }
    }
}

// ---------------------------------------------------------------------------- schema

/// The JSON Schema of the plugin configuration, draft 2020-12.
pub fn plugin_config_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator
        .into_root_schema_for::<PluginConfigDto>()
        .to_value();
    remove_generated_descriptions(&mut schema);
    remove_null(&mut schema);
    rename_definitions(&mut schema);
    for (pointer, patch) in annotations() {
        if let (Some(Value::Object(target)), Value::Object(patch)) =
            (schema.pointer_mut(pointer), patch)
        {
            target.extend(patch);
        }
    }
    order_keys(&mut schema);
    schema
}

/// The DTOs' doc comments speak to Rust readers; the schema gets its own words below.
fn remove_generated_descriptions(schema: &mut Value) {
    visit_schemas(schema, &mut |object| {
        object.remove("description");
        object.remove("title");
    });
}

/// `Option<T>` means "may be left out"; the schema asks for the value or nothing rather than
/// advertising `null` (which the filter treats as left out).
fn remove_null(schema: &mut Value) {
    visit_schemas(schema, &mut |object| {
        if let Some(Value::Array(types)) = object.get_mut("type") {
            types.retain(|t| t != "null");
            if let [single] = types.as_slice() {
                let single = single.clone();
                object.insert("type".into(), single);
            }
        }
        let non_null = match object.get("anyOf") {
            Some(Value::Array(options)) => {
                let kept: Vec<&Value> = options
                    .iter()
                    .filter(|o| o.get("type") != Some(&json!("null")))
                    .collect();
                match kept.as_slice() {
                    [only] if options.len() == 2 => Some((*only).clone()),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(Value::Object(only)) = non_null {
            object.remove("anyOf");
            object.extend(only);
        }
    });
}

/// `ConditionDto` → `Condition`: the names users see in editors and errors.
fn rename_definitions(schema: &mut Value) {
    let plain = |name: &str| name.strip_suffix("Dto").unwrap_or(name).to_string();
    if let Some(Value::Object(defs)) = schema.get_mut("$defs") {
        let renamed: Map<String, Value> = std::mem::take(defs)
            .into_iter()
            .map(|(name, def)| (plain(&name), def))
            .collect();
        *defs = renamed;
    }
    visit_schemas(schema, &mut |object| {
        if let Some(Value::String(reference)) = object.get_mut("$ref") {
            if let Some(name) = reference.strip_prefix("#/$defs/") {
                *reference = format!("#/$defs/{}", plain(name));
            }
        }
    });
}

/// Calls `f` on every schema object in `schema` (the root, definitions, properties, items,
/// and the subschemas of the applicators).
fn visit_schemas(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(object) = schema else {
        return;
    };
    f(object);
    for key in ["$defs", "properties"] {
        if let Some(Value::Object(children)) = object.get_mut(key) {
            for child in children.values_mut() {
                visit_schemas(child, f);
            }
        }
    }
    for key in ["items", "not", "if", "then", "else", "additionalProperties"] {
        if let Some(child) = object.get_mut(key) {
            visit_schemas(child, f);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(children)) = object.get_mut(key) {
            for child in children {
                visit_schemas(child, f);
            }
        }
    }
}

fn required(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|name| json!({ "required": [name] }))
        .collect()
}

/// `split.ramp.start`: the form [`crate::ramp::parse_rfc3339_utc`] accepts (the ranges of
/// each field, leap years and other offsets are the compiler's to check and explain).
const RFC3339_UTC_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// Descriptions, defaults and the constraints JSON Schema can express, by JSON pointer.
fn annotations() -> Vec<(&'static str, Value)> {
    let patterns = Patterns::new();
    let value_kinds = required(&["header", "cookie", "query"]);
    let operator_fields: Vec<&str> = ConditionDto::OPERATORS
        .into_iter()
        .chain(["ignore_case"])
        .collect();
    vec![
        (
            "",
            json!({
                "title": "canary-tagger plugin configuration",
                "description": "The pluginConfig of the canary-tagger WasmPlugin (or the JSON string in an EnvoyFilter's wasm configuration). canary-tagger decides, once per request at the gateway, which version of the backend the request belongs to and writes it into the tag header, so that VirtualService header matches route every hop to that version. Checked strictly when Envoy loads it: a rejected configuration is logged with its JSON path and Envoy keeps the previous one. `canary-tagger validate` reports the same errors before you apply it.",
            }),
        ),
        (
            "/properties/schema",
            json!({
                "description": "Version of this configuration format.",
                "const": 1,
                "default": 1,
            }),
        ),
        (
            "/properties/tag_header",
            json!({
                "description": "The request header the decided version is written to; route on it with a VirtualService `headers: {<tag_header>: {exact: <version>}}` match. A client-sent value is removed unless it comes from trusted_tag_sources.",
                "pattern": patterns.token,
                "default": config::DEFAULT_TAG_HEADER,
            }),
        ),
        (
            "/properties/versions",
            json!({
                "description": "Every version a request can be tagged with (the DestinationRule subsets).",
                "minItems": 1,
                "uniqueItems": true,
            }),
        ),
        (
            "/properties/versions/items",
            json!({ "pattern": patterns.version }),
        ),
        (
            "/properties/default_version",
            json!({
                "description": "The version of requests no rule claims. Must be one of `versions`.",
                "pattern": patterns.version,
            }),
        ),
        (
            "/properties/client_ip",
            json!({
                "description": "Where the client address (for source_ip conditions, split keys and trusted_tag_sources) comes from.",
                "default": { "from": "peer" },
            }),
        ),
        (
            "/properties/trusted_tag_sources",
            json!({
                "description": "Clients in these ranges may choose their version by sending the tag header with a known version; no rule runs for them. Everybody else's tag header is removed.",
            }),
        ),
        (
            "/properties/trusted_tag_sources/items",
            json!({
                "description": "An IPv4 or IPv6 address or CIDR range (host bits clear), e.g. 10.20.0.0/16 or 2001:db8::/32.",
                "minLength": 1,
            }),
        ),
        (
            "/properties/normalize",
            json!({
                "description": "Header rewrites applied before the rules: a header that is missing or not in `allowed` is set to `default` (when `when` holds).",
                "maxItems": config::MAX_NORMALIZE,
                "default": [],
            }),
        ),
        (
            "/properties/rules",
            json!({
                "description": "Evaluated in order; the first rule whose `match` holds decides the version. No rule matches: default_version.",
                "default": [],
            }),
        ),
        (
            "/properties/sticky_cookie",
            json!({
                "description": "When a split finds none of its keys, the filter issues a random id in this cookie and hashes it, so the next request lands on the same version. The cookie is always the first key a split tries.",
            }),
        ),
        (
            "/properties/response_header",
            json!({
                "description": "If set, the response carries this header with the decided version.",
                "pattern": patterns.token,
            }),
        ),
        (
            "/properties/baggage",
            json!({
                "description": "Also add `canary-version=<version>` to the W3C `baggage` header, which OpenTelemetry-instrumented services forward to the next hop.",
            }),
        ),
        (
            "/properties/tracestate",
            json!({
                "description": "Also put `canary=<version>` first in the W3C `tracestate` header when the request has a valid `traceparent` (tracing libraries forward it unchanged). A client's own `canary` member is removed at the gateway either way.",
            }),
        ),
        (
            "/properties/mode",
            json!({
                "description": "gateway: decide each request's version with the rules (at the edge). sidecar: on a workload's sidecar, remember the version of inbound requests by trace id and restore the tag on the workload's outbound calls. waypoint: on an ambient waypoint, keep and remember a known tag, restore any other request's (no listener direction is read). In sidecar and waypoint mode the rules, normalize, client_ip, sticky_cookie and trusted_tag_sources are not allowed; restore and trace_memory only there.",
                "default": "gateway",
            }),
        ),
        (
            "/properties/restore",
            json!({
                "description": "Sidecar and waypoint mode: where a restored call's version comes from, tried in order; the first that names a known version wins, none: default_version. header: the tag header the app forwarded. baggage: the canary-version member of the W3C baggage header. tracestate: the canary member of the W3C tracestate header. trace: the version remembered for the call's trace id (traceparent, x-b3-traceid, x-request-id). Default: [header, baggage, trace] in sidecar mode, [header, baggage, tracestate, trace] in waypoint mode.",
                "minItems": 1,
                "uniqueItems": true,
            }),
        ),
        (
            "/properties/trace_memory",
            json!({
                "description": "Sidecar and waypoint mode: the trace id -> version table shared by the whole Envoy (each waypoint replica has its own).",
                "default": { "entries": config::DEFAULT_TRACE_ENTRIES, "ttl_s": config::DEFAULT_TRACE_TTL_S },
            }),
        ),
        (
            "/$defs/Mode",
            json!({ "description": "gateway, sidecar or waypoint." }),
        ),
        (
            "/$defs/RestoreSource",
            json!({ "description": "header, baggage, tracestate or trace." }),
        ),
        (
            "/$defs/TraceMemory",
            json!({
                "description": "A fixed number of slots (memory is bounded by it: about 250 bytes each in Envoy); a trace id has two candidate slots and takes the free, expired or older one, so a newer trace may take over an older one's.",
            }),
        ),
        (
            "/$defs/TraceMemory/properties/entries",
            json!({
                "description": "Slots in the table.",
                "default": config::DEFAULT_TRACE_ENTRIES,
                "minimum": 1,
                "maximum": config::MAX_TRACE_ENTRIES,
            }),
        ),
        (
            "/$defs/TraceMemory/properties/ttl_s",
            json!({
                "description": "Seconds an entry counts; older entries are ignored.",
                "default": config::DEFAULT_TRACE_TTL_S,
                "minimum": 1,
                "maximum": config::MAX_TRACE_TTL_S,
            }),
        ),
        (
            "",
            json!({
                "if": { "properties": { "mode": { "enum": ["sidecar", "waypoint"] } }, "required": ["mode"] },
                "then": { "properties": {
                    "client_ip": false, "trusted_tag_sources": false, "normalize": false,
                    "rules": false, "sticky_cookie": false,
                } },
                "else": { "properties": { "restore": false, "trace_memory": false } },
            }),
        ),
        (
            "/$defs/ClientIp",
            json!({
                "description": "`peer`: the downstream connection's address. `xff`: the x-forwarded-for entry `trusted_hops` from the right (Envoy's xff_num_trusted_hops rule); too few or malformed entries fall back to the peer.",
                "if": { "properties": { "from": { "const": "peer" } }, "required": ["from"] },
                "then": { "not": { "required": ["trusted_hops"] } },
            }),
        ),
        (
            "/$defs/ClientIp/properties/from",
            json!({
                "description": "peer or xff.",
            }),
        ),
        (
            "/$defs/ClientIp/properties/trusted_hops",
            json!({
                "description": "Proxies in front of this gateway that append to x-forwarded-for (from: xff only).",
                "default": 0,
            }),
        ),
        (
            "/$defs/ClientIpFrom",
            json!({ "description": "Where the client address comes from." }),
        ),
        (
            "/$defs/Normalize",
            json!({ "description": "One header rewrite (the generalised Lua normalization filter)." }),
        ),
        (
            "/$defs/Normalize/properties/header",
            json!({
                "description": "The request header to normalize (not the tag header, not a pseudo-header).",
                "pattern": patterns.token,
            }),
        ),
        (
            "/$defs/Normalize/properties/allowed",
            json!({
                "description": "Values kept as they are.",
                "minItems": 1,
            }),
        ),
        (
            "/$defs/Normalize/properties/default",
            json!({
                "description": "The value a missing or unknown header is set to; must be one of `allowed`.",
            }),
        ),
        (
            "/$defs/Normalize/properties/when",
            json!({
                "description": "Normalize only requests this condition holds for (e.g. gRPC requests).",
            }),
        ),
        (
            "/$defs/Rule",
            json!({
                "description": "A condition and exactly one action: `version`, `version_from` or `split`.",
                "oneOf": required(&RuleDto::ACTIONS),
            }),
        ),
        (
            "/$defs/Rule/properties/name",
            json!({
                "description": "Unique rule name; names the rule in counters and in `canary-tagger explain`.",
                "pattern": patterns.rule_name,
            }),
        ),
        (
            "/$defs/Rule/properties/match",
            json!({
                "description": "When the rule applies; left out, it applies to every request.",
            }),
        ),
        (
            "/$defs/Rule/properties/version",
            json!({
                "description": "Tag matching requests with this version (one of `versions`).",
                "pattern": patterns.version,
            }),
        ),
        (
            "/$defs/Rule/properties/version_from",
            json!({
                "description": "`header:NAME` or `cookie:NAME`: the request's value when it names a known version; otherwise the rule does not apply and the next one is tried.",
                "pattern": patterns.version_from,
            }),
        ),
        (
            "/$defs/Rule/properties/split",
            json!({
                "description": "Divide matching requests between versions by weight, sticky per user.",
            }),
        ),
        (
            "/$defs/Split",
            json!({
                "description": "Each user hashes to one of 10000 buckets: fmix64(fnv1a64(salt + \":\" + key)) mod 10000. Weights take consecutive bucket ranges in the listed order, so growing the first version only moves users into it.",
            }),
        ),
        (
            "/$defs/Split/properties/weights",
            json!({
                "description": "Versions and their percents, which must sum to 100 (two decimals at most).",
                "minItems": 1,
            }),
        ),
        (
            "/$defs/Split/properties/key",
            json!({
                "description": "The first of these present in the request is hashed: `cookie:NAME`, `header:NAME`, `query:NAME` or `source_ip`. None present: the sticky cookie (if configured), else a random bucket per request (not sticky).",
            }),
        ),
        (
            "/$defs/Split/properties/key/items",
            json!({ "pattern": patterns.split_key }),
        ),
        (
            "/$defs/Split/properties/salt",
            json!({
                "description": "Hash salt; defaults to the rule name. Two splits with the same salt and key put a user in the same bucket.",
            }),
        ),
        (
            "/$defs/Split/properties/ramp",
            json!({
                "description": "Grow the first listed version by itself over time (SPEC §9). Leave out for fixed weights.",
            }),
        ),
        (
            "/$defs/Ramp",
            json!({
                "description": "The first listed version's percent moves linearly from its configured weight at `start` to `to` at `start + duration_s` (in whole buckets of 0.01 %, by the host's clock read once a second); the other versions share the rest in their configured proportions. Before `start` the configured weights apply, after the end `to`. A user on the first version never moves back while it ramps.",
            }),
        ),
        (
            "/$defs/Ramp/properties/start",
            json!({
                "description": "When the ramp starts: an RFC 3339 date and time in UTC, e.g. `2026-12-01T10:00:00Z` (`+00:00` is UTC too; a fraction of a second is dropped).",
                "format": "date-time",
                "pattern": RFC3339_UTC_PATTERN,
            }),
        ),
        (
            "/$defs/Ramp/properties/duration_s",
            json!({
                "description": "How long the ramp takes, in seconds.",
                "minimum": 1,
            }),
        ),
        (
            "/$defs/Ramp/properties/to",
            json!({
                "description": "The first version's percent at the end: at least its configured weight, at most 100, two decimals at most.",
                "minimum": 0,
                "maximum": 100,
            }),
        ),
        (
            "/$defs/Weight",
            json!({ "description": "One version's share of a split." }),
        ),
        (
            "/$defs/Weight/properties/version",
            json!({
                "description": "One of `versions`, listed once per split.",
                "pattern": patterns.version,
            }),
        ),
        (
            "/$defs/Weight/properties/percent",
            json!({
                "description": "0 to 100 with at most two decimals (one bucket is 0.01 %).",
                "minimum": 0,
                "maximum": 100,
            }),
        ),
        (
            "/$defs/StickyCookie",
            json!({
                "description": "Set as `NAME=ID; Path=/; Max-Age=...; HttpOnly; SameSite=Lax` (plus `Secure` if asked).",
            }),
        ),
        (
            "/$defs/StickyCookie/properties/name",
            json!({
                "description": "Cookie name.",
                "pattern": patterns.token,
            }),
        ),
        (
            "/$defs/StickyCookie/properties/max_age_s",
            json!({
                "description": "Cookie lifetime in seconds.",
                "minimum": 1,
                "default": config::DEFAULT_STICKY_MAX_AGE_S,
            }),
        ),
        (
            "/$defs/StickyCookie/properties/secure",
            json!({
                "description": "Add the `Secure` attribute (HTTPS only).",
                "default": false,
            }),
        ),
        (
            "/$defs/StickyCookie/properties/signing",
            json!({
                "description": "Sign issued ids (`ID.KID.MAC`, HMAC-SHA256) so a client cannot mint its own bucket; a value that does not verify counts as no sticky cookie. Left out: ids are plain and any value is hashed as sent.",
            }),
        ),
        (
            "/$defs/Signing",
            json!({
                "description": "Where the signing keys are: an environment variable of the Wasm VM, never the plugin configuration.",
            }),
        ),
        (
            "/$defs/Signing/properties/keys_env",
            json!({
                "description": "The environment variable (Envoy `vm_config.environment_variables`, Istio `vmConfig.env`) holding `KID:BASE64,KID:BASE64,...`: KID 1-16 of A-Z a-z 0-9 _ -, keys of at least 16 bytes. The first key signs, every key verifies. Missing or malformed: the configuration is rejected.",
                "pattern": signing::ENV_NAME_PATTERN,
            }),
        ),
        (
            "/$defs/Condition",
            json!({
                "description": "Exactly one of `header`, `cookie`, `query` (each with exactly one operator: exact, prefix, suffix, contains, regex or present, and optionally ignore_case), `source_ip`, `all`, `any`, `not`.",
                "oneOf": required(&ConditionDto::KINDS),
                "if": { "anyOf": value_kinds },
                "then": {
                    "oneOf": required(&ConditionDto::OPERATORS),
                    "not": { "required": ["present", "ignore_case"] },
                },
                "else": {
                    "not": { "anyOf": required(&operator_fields) },
                },
            }),
        ),
        (
            "/$defs/Condition/properties/header",
            json!({
                "description": "A request header, case-insensitive; :path, :method, :authority and :scheme allowed. Any of repeated values may match.",
                "pattern": patterns.match_header,
            }),
        ),
        (
            "/$defs/Condition/properties/cookie",
            json!({
                "description": "A cookie, from every cookie header.",
                "pattern": patterns.token,
            }),
        ),
        (
            "/$defs/Condition/properties/query",
            json!({
                "description": "A query parameter of :path, percent-decoded.",
                "minLength": 1,
            }),
        ),
        (
            "/$defs/Condition/properties/source_ip",
            json!({
                "description": "The client address (see client_ip) is in one of these addresses or CIDR ranges (IPv4 and IPv6).",
                "minItems": 1,
            }),
        ),
        (
            "/$defs/Condition/properties/all",
            json!({
                "description": "Every condition holds.",
                "minItems": 1,
            }),
        ),
        (
            "/$defs/Condition/properties/any",
            json!({
                "description": "At least one condition holds.",
                "minItems": 1,
            }),
        ),
        (
            "/$defs/Condition/properties/not",
            json!({ "description": "The condition does not hold." }),
        ),
        (
            "/$defs/Condition/properties/exact",
            json!({ "description": "The value equals this." }),
        ),
        (
            "/$defs/Condition/properties/prefix",
            json!({ "description": "The value starts with this." }),
        ),
        (
            "/$defs/Condition/properties/suffix",
            json!({ "description": "The value ends with this." }),
        ),
        (
            "/$defs/Condition/properties/contains",
            json!({ "description": "The value contains this." }),
        ),
        (
            "/$defs/Condition/properties/regex",
            json!({
                "description": "A regular expression (Rust regex syntax) that must match the whole value, as Istio's regex matches do.",
            }),
        ),
        (
            "/$defs/Condition/properties/present",
            json!({
                "description": "true: the header, cookie or parameter is present (any value); false: it is absent.",
            }),
        ),
        (
            "/$defs/Condition/properties/ignore_case",
            json!({
                "description": "Compare ASCII letters case-insensitively (not with present).",
                "default": false,
            }),
        ),
    ]
}

/// Keys in the order people read a schema in.
fn order_keys(schema: &mut Value) {
    const ORDER: [&str; 33] = [
        "$schema",
        "$id",
        "title",
        "description",
        "$ref",
        "type",
        "const",
        "enum",
        "default",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "items",
        "properties",
        "required",
        "additionalProperties",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "$defs",
        "examples",
        "readOnly",
        "writeOnly",
    ];
    let rank = |key: &str| ORDER.iter().position(|k| *k == key).unwrap_or(ORDER.len());
    match schema {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(object).into_iter().collect();
            // Property names and definitions keep their own (declaration) order.
            entries.sort_by_key(|(key, _)| rank(key));
            for (key, value) in &mut entries {
                if key != "enum" && key != "const" && key != "default" {
                    order_keys(value);
                }
            }
            object.extend(entries);
        }
        Value::Array(items) => items.iter_mut().for_each(order_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_annotation_lands_on_a_schema_object() {
        let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let mut raw = generator
            .into_root_schema_for::<PluginConfigDto>()
            .to_value();
        remove_null(&mut raw);
        rename_definitions(&mut raw);
        for (pointer, _) in annotations() {
            assert!(
                raw.pointer(pointer).is_some_and(Value::is_object),
                "{pointer} is not in the generated schema (did a DTO change?)"
            );
        }
    }

    #[test]
    fn every_property_is_described() {
        let schema = plugin_config_schema();
        let mut missing = Vec::new();
        let mut objects = vec![("".to_string(), &schema)];
        if let Some(Value::Object(defs)) = schema.get("$defs") {
            for (name, def) in defs {
                assert!(
                    def.get("description").is_some(),
                    "$defs/{name} has no description"
                );
                objects.push((format!("/$defs/{name}"), def));
            }
        }
        for (at, object) in objects {
            if let Some(Value::Object(properties)) = object.get("properties") {
                for (name, property) in properties {
                    if property.get("description").is_none() {
                        missing.push(format!("{at}/properties/{name}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    #[test]
    fn no_null_and_no_dto_names_remain() {
        let text = plugin_config_schema().to_string();
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("Dto"), "{text}");
    }

    #[test]
    fn schema_patterns_compile() {
        let patterns = Patterns::new();
        for pattern in [
            patterns.version,
            patterns.rule_name,
            patterns.token,
            patterns.match_header,
            patterns.version_from,
            patterns.split_key,
        ] {
            regex::Regex::new(&pattern).unwrap();
        }
    }
}
