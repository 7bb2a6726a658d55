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

use serde_json::{json, Map, Value};

use crate::config::dto::{ConditionDto, RuleDto};
use crate::config::error::{Expected, Found, PathSegment, SchemaKeyword};
use crate::config::{
    self, CompiledConfig, ConfigError, ConfigErrors, Environment, ErrorKind, JsonPath,
    PluginConfigDto,
};
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

// ---------------------------------------------------------------------------- validation

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
        assert!(errors(include_str!("../fixtures/configs/spec-example.json")).is_empty());
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
