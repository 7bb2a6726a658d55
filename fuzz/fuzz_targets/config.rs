//! Arbitrary bytes as plugin configuration: compiling never panics; every rejection is one
//! `path: reason` line per error; a configuration the compiler accepts is also accepted by
//! the JSON Schema validator and by `canary-tagger validate`'s compiler, and the two
//! compilers agree on every input; its decision counters have distinct names.
#![no_main]

use canary_tagger::config::{CompiledConfig, ConfigErrors};
use canary_tagger::metrics::MetricNames;
use canary_tagger::schema;
use canary_tagger_fuzz::config_check::{check_rejection, schema_of};
use libfuzzer_sys::fuzz_target;

/// `sticky_cookie.signing` finds valid keys in `K`, malformed ones in `BAD`, none elsewhere.
const ENVIRONMENT: [(&str, &str); 2] = [("K", "k:MDEyMzQ1Njc4OWFiY2RlZg=="), ("BAD", "k:c2hvcnQ=")];

fuzz_target!(|json: &[u8]| {
    let compiled = CompiledConfig::from_json_in(json, &ENVIRONMENT);
    let reported = schema::compile_reporting_all(json, &ENVIRONMENT);
    match (&compiled, &reported) {
        (Ok(config), Ok(_)) => {
            let document: serde_json::Value = match serde_json::from_slice(json) {
                Ok(document) => document,
                Err(error) => panic!("accepted, but not JSON to serde_json: {error}"),
            };
            let findings = schema::validate(schema_of(), &document);
            assert!(
                findings.is_empty(),
                "the compiler accepts what the JSON Schema rejects: {}",
                ConfigErrors(findings)
            );
            // What the filter does next with an accepted configuration: one counter per
            // (rule or default or trusted tag, version), no two with the same name.
            let names = MetricNames::new(config);
            let decisions: Vec<&String> = names.decisions.iter().flatten().flatten().collect();
            let distinct: std::collections::HashSet<&&String> = decisions.iter().collect();
            assert_eq!(
                distinct.len(),
                decisions.len(),
                "two decisions share a counter"
            );
        }
        (Err(errors), Err(all)) => {
            check_rejection(errors);
            check_rejection(all);
        }
        (Ok(_), Err(all)) => panic!("the filter accepts, `canary-tagger validate` rejects: {all}"),
        (Err(errors), Ok(_)) => {
            panic!("`canary-tagger validate` accepts, the filter rejects: {errors}")
        }
    }
});
