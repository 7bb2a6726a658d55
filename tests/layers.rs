//! The layers of docs/architecture.md hold in the code: every `crate::MODULE` path in a
//! module of `src/` names a module its row of the layer table allows. The table is read
//! from the document, so the picture a newcomer reads is the rule the build checks.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `module → modules it may use`, from the rows between the `layers` markers.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(repo("docs/architecture.md")).unwrap();
    let start = doc
        .find("<!-- layers")
        .expect("docs/architecture.md has no layers table");
    let end = doc
        .find("<!-- /layers -->")
        .expect("the layers table is not closed");
    let mut table = BTreeMap::new();
    for line in doc[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let module = cells[0].trim_matches('`').to_string();
        let uses = cells[1]
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_string())
            .filter(|m| !m.is_empty() && m != "—")
            .collect();
        table.insert(module, uses);
    }
    table
}

/// The library's modules, each with the text of all its files: `src/NAME.rs` and every file
/// under `src/NAME/` are `NAME` (the CLI under `src/bin/` is not the library's).
fn modules() -> BTreeMap<String, String> {
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    let mut pending = vec![repo("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let inside = path.strip_prefix(repo("src")).unwrap();
            if path.is_dir() {
                if inside != Path::new("bin") {
                    pending.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || inside == Path::new("lib.rs") {
                continue;
            }
            let first = inside.components().next().unwrap().as_os_str();
            let module = Path::new(first).file_stem().unwrap().to_string_lossy();
            let text = std::fs::read_to_string(&path).unwrap();
            modules
                .entry(module.to_string())
                .or_default()
                .push_str(&text);
        }
    }
    modules
}

/// The modules named by `crate::NAME` in code (comments left out: doc links may point
/// anywhere).
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn every_module_uses_only_what_its_layer_allows() {
    let allowed = allowed();
    let modules = modules();
    let mut crossings = Vec::new();
    for (module, text) in &modules {
        let Some(may_use) = allowed.get(module) else {
            crossings.push(format!(
                "`{module}` has no row in docs/architecture.md's layer table"
            ));
            continue;
        };
        for used in uses(text) {
            if used != *module && !may_use.contains(&used) {
                crossings.push(format!(
                    "`{module}` uses `crate::{used}`, which its row does not allow"
                ));
            }
        }
    }
    for module in allowed.keys() {
        if !modules.contains_key(module) {
            crossings.push(format!(
                "the layer table names `{module}`, which is not a module of src/"
            ));
        }
    }
    assert!(crossings.is_empty(), "{}", crossings.join("\n"));
}

#[test]
fn the_parser_sees_the_table_and_the_uses() {
    // An empty table or a blind scanner would pass the check above vacuously.
    let allowed = allowed();
    assert!(allowed.len() >= 15, "{allowed:?}");
    assert!(allowed["hash"].is_empty());
    assert!(allowed["filter"].contains("engine"));
    // A module's folder is read too, not only its `NAME.rs`.
    let compile = std::fs::read_to_string(repo("src/config/compile/mod.rs")).unwrap();
    assert!(modules()["config"].contains(&compile));
    assert_eq!(
        uses(
            "use crate::engine::{self, Decision}; // crate::host\nlet x = crate::hash::bucket(1);"
        ),
        BTreeSet::from(["engine".to_string(), "hash".to_string()])
    );
}
