//! Finding the plugin configuration in a file: plain plugin config JSON (or YAML), a
//! WasmPlugin's `spec.pluginConfig`, or the JSON string an Envoy wasm filter carries in
//! `config.configuration` (legacy EnvoyFilter patches, Envoy bootstraps, ECDS resources).

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// One plugin configuration found in a file.
pub struct Found {
    /// The Kubernetes object it came from (`WasmPlugin istio-system/canary-tagger`), if any.
    pub object: Option<String>,
    /// JSON path of the configuration inside its document (`spec.pluginConfig`); empty for
    /// a plain config file.
    pub at: String,
    /// The configuration JSON, or why there is none where one belongs.
    pub json: Result<Vec<u8>, String>,
}

impl Found {
    /// `FILE` or `FILE (WasmPlugin ns/name)`.
    pub fn location(&self, file: &str) -> String {
        let file = display_name(file);
        match &self.object {
            Some(object) => format!("{file} ({object})"),
            None => file.to_string(),
        }
    }

    /// A path inside the configuration as a path inside the file.
    pub fn path_in_file(&self, path: &str) -> String {
        match (self.at.is_empty(), path) {
            (true, path) => path.to_string(),
            (false, "$") => self.at.clone(),
            (false, path) => format!("{}.{path}", self.at),
        }
    }
}

/// Why a file yields no configuration to check.
pub enum LoadError {
    /// Cannot be read, or cannot be used as asked (exit status 2).
    Usage(String),
    /// Not parseable, or holds no plugin configuration (exit status 1).
    Invalid(String),
}

/// How a path is named in messages.
pub fn display_name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

/// Reads `path` (`-`: standard input) and finds every plugin configuration in it.
pub fn load(path: &str) -> Result<Vec<Found>, LoadError> {
    let bytes = read(path).map_err(LoadError::Usage)?;
    let found = find_configs(path, &bytes).map_err(LoadError::Invalid)?;
    let path = display_name(path);
    if found.is_empty() {
        return Err(LoadError::Invalid(format!(
            "{path}: no canary-tagger configuration found (expected plugin config JSON, a \
             WasmPlugin with spec.pluginConfig, or an Envoy wasm filter's configuration)"
        )));
    }
    Ok(found)
}

/// Exactly one configuration (for `explain` and `render`).
pub fn load_one(path: &str) -> Result<Found, LoadError> {
    let mut found = load(path)?;
    let path = display_name(path);
    if found.len() > 1 {
        let objects: Vec<String> = found.iter().map(|f| f.location(path)).collect();
        return Err(LoadError::Usage(format!(
            "{path} holds {} plugin configurations ({}); pass a file with one",
            found.len(),
            objects.join(", ")
        )));
    }
    found
        .pop()
        .ok_or_else(|| LoadError::Invalid(format!("{path}: no canary-tagger configuration found")))
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else if Path::new(path).is_dir() {
        return Err(format!("cannot read {path}: it is a directory"));
    } else {
        std::fs::read(path).map(|read| bytes = read)
    };
    result.map_err(|error| format!("cannot read {path}: {}", plain_io_error(&error)))?;
    Ok(bytes)
}

/// `No such file or directory (os error 2)` → `no such file or directory`.
fn plain_io_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text.get(..at).unwrap_or(&text).to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn is_yaml(path: &str, bytes: &[u8]) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return true;
    }
    if lower.ends_with(".json") {
        return false;
    }
    // Standard input or another name: JSON starts with `{` (or `[`).
    !matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[') | None
    )
}

fn find_configs(path: &str, bytes: &[u8]) -> Result<Vec<Found>, String> {
    if !is_yaml(path, bytes) {
        return Ok(match serde_json::from_slice::<Value>(bytes) {
            Ok(document) if is_container(&document) => from_document(&document),
            // A plain config, or JSON the compiler will report in its own words
            // (`$: invalid JSON: ... at line 3 column 5`): keep the bytes as they are.
            _ => vec![Found {
                object: None,
                at: String::new(),
                json: Ok(bytes.to_vec()),
            }],
        });
    }
    let mut found = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_slice(bytes).enumerate() {
        let document = Value::deserialize(document).map_err(|error| {
            let which = if index > 0 {
                format!(" (document {})", index + 1)
            } else {
                String::new()
            };
            format!("{}: invalid YAML{which}: {error}", display_name(path))
        })?;
        if document.is_null() {
            continue;
        }
        if is_container(&document) {
            found.extend(from_document(&document));
        } else {
            found.push(Found {
                object: None,
                at: String::new(),
                json: serde_json::to_vec(&document).map_err(|e| e.to_string()),
            });
        }
    }
    Ok(found)
}

/// A Kubernetes object or an Envoy configuration, rather than a plugin config itself.
fn is_container(document: &Value) -> bool {
    document.get("kind").is_some()
        || document.get("apiVersion").is_some()
        || !wasm_configurations(document).is_empty()
}

fn object_name(document: &Value) -> Option<String> {
    let kind = document.get("kind")?.as_str()?;
    let metadata = document.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    Some(
        match metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
        {
            Some(namespace) => format!("{kind} {namespace}/{name}"),
            None => format!("{kind} {name}"),
        },
    )
}

fn from_document(document: &Value) -> Vec<Found> {
    let object = object_name(document);
    if document.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
        let json = match document.get("spec").and_then(|s| s.get("pluginConfig")) {
            Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string()),
            None => Err(
                "missing: without a pluginConfig the filter rejects its (empty) configuration"
                    .to_string(),
            ),
        };
        return vec![Found {
            object,
            at: "spec.pluginConfig".into(),
            json,
        }];
    }
    wasm_configurations(document)
        .into_iter()
        .map(|(at, json)| Found {
            object: object.clone(),
            at,
            json,
        })
        .collect()
}

/// Every Envoy wasm HTTP filter in `document` (at any depth): the path of its plugin
/// configuration and the configuration JSON.
fn wasm_configurations(document: &Value) -> Vec<(String, Result<Vec<u8>, String>)> {
    let mut found = Vec::new();
    search(document, &mut String::new(), &mut found);
    found
}

fn search(node: &Value, path: &mut String, found: &mut Vec<(String, Result<Vec<u8>, String>)>) {
    match node {
        Value::Object(members) => {
            let type_name = members.get("@type").and_then(Value::as_str);
            if type_name == Some(WASM_FILTER_TYPE) {
                found.push(configuration(node, path));
                return;
            }
            // `udpa.type.v1.TypedStruct` / `xds.type.v3.TypedStruct` wrapping the Wasm message.
            if members.get("type_url").and_then(Value::as_str) == Some(WASM_FILTER_TYPE) {
                if let Some(inner) = members.get("value") {
                    found.push(configuration(inner, &join(path, "value")));
                    return;
                }
            }
            for (key, child) in members {
                let mut child_path = join(path, key);
                search(child, &mut child_path, found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let mut child_path = format!("{path}[{index}]");
                search(child, &mut child_path, found);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `config.configuration` of a Wasm filter message: a StringValue holding the JSON.
fn configuration(wasm: &Value, path: &str) -> (String, Result<Vec<u8>, String>) {
    let at = join(path, "config.configuration");
    let Some(configuration) = wasm.get("config").and_then(|c| c.get("configuration")) else {
        return (
            at,
            Err(
                "missing: without a configuration the filter rejects its (empty) configuration"
                    .into(),
            ),
        );
    };
    match (
        configuration.get("@type").and_then(Value::as_str),
        configuration.get("value"),
    ) {
        (Some(STRING_VALUE_TYPE), Some(Value::String(json))) => {
            (join(&at, "value"), Ok(json.as_bytes().to_vec()))
        }
        _ => (
            at,
            Err(format!(
                "expected {{\"@type\": \"{STRING_VALUE_TYPE}\", \"value\": \"<plugin config JSON>\"}}"
            )),
        ),
    }
}
