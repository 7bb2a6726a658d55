//! What the `config` target checks of a rejection: each error renders as one line
//! `path: reason`, the path written the way the configuration's JSON paths are
//! (`$`, or field names and `[index]`es joined by dots), the reason non-empty.

use std::sync::OnceLock;

use canary_tagger::config::ConfigErrors;

/// The plugin configuration's JSON Schema, built once.
pub fn schema_of() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(canary_tagger::schema::plugin_config_schema)
}

pub fn check_rejection(errors: &ConfigErrors) {
    assert!(!errors.0.is_empty(), "a rejection without an error");
    for error in &errors.0 {
        let line = error.to_string();
        assert!(
            !line.contains(['\n', '\r']),
            "an error spans several lines: {line:?}"
        );
        let Some((path, reason)) = line.split_once(": ") else {
            panic!("not `path: reason`: {line:?}");
        };
        assert!(is_json_path(path), "not a JSON path: {path:?} in {line:?}");
        assert!(!reason.trim().is_empty(), "no reason: {line:?}");
    }
    // The filter logs all of them as one line.
    let logged = errors.to_string();
    assert!(
        !logged.contains(['\n', '\r']),
        "the log line breaks: {logged:?}"
    );
}

/// `$`, or `name([index])*(.name([index])*)*` with names of the configuration's fields.
pub fn is_json_path(path: &str) -> bool {
    if path == "$" {
        return true;
    }
    path.split('.').all(|segment| {
        let (name, mut indices) = match segment.find('[') {
            Some(at) => segment.split_at(at),
            None => (segment, ""),
        };
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        while let Some(rest) = indices.strip_prefix('[') {
            let Some((digits, after)) = rest.split_once(']') else {
                return false;
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            indices = after;
        }
        name_ok && indices.is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::is_json_path;

    #[test]
    fn json_paths() {
        for good in [
            "$",
            "versions",
            "rules[3].split.weights[0].percent",
            "rules[0].match.all[1]",
        ] {
            assert!(is_json_path(good), "{good}");
        }
        for bad in [
            "",
            "rules[",
            "rules[x]",
            "rules[0]x",
            ".a",
            "a..b",
            "A",
            "rules.[0]",
        ] {
            assert!(!is_json_path(bad), "{bad}");
        }
    }
}
