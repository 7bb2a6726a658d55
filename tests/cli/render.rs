//! `render`: the Istio and Gateway API objects for a configuration.

use super::*;

#[test]
fn render_routes_every_version_and_defaults_to_default_version() {
    let file = temp_file(
        "config.json",
        r#"{"tag_header": "X-Shop-Version", "versions": ["v1", "v2", "v3"], "default_version": "v2"}"#,
    );
    let out = run(&[
        "render",
        &file,
        "--host",
        "shop.example.com",
        "--service",
        "frontend.shop.svc.cluster.local",
        "--namespace",
        "shop",
        "--gateway",
        "istio-system/shop-gateway",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&out.stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    let (vs, dr) = (&docs[0], &docs[1]);

    assert_eq!(vs["apiVersion"], "networking.istio.io/v1");
    assert_eq!(vs["kind"], "VirtualService");
    assert_eq!(vs["metadata"]["name"], "frontend");
    assert_eq!(vs["metadata"]["namespace"], "shop");
    assert_eq!(vs["spec"]["hosts"], serde_json::json!(["shop.example.com"]));
    assert_eq!(
        vs["spec"]["gateways"],
        serde_json::json!(["istio-system/shop-gateway"])
    );
    let routes = vs["spec"]["http"].as_array().unwrap();
    assert_eq!(routes.len(), 4);
    for (route, version) in routes.iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(
            route["match"],
            serde_json::json!([{"headers": {"x-shop-version": {"exact": version}}}]),
            "Istio wants header names lower-case"
        );
        assert_eq!(
            route["route"],
            serde_json::json!([{"destination": {"host": "frontend.shop.svc.cluster.local", "subset": version}}])
        );
    }
    let default = &routes[3];
    assert!(
        default.get("match").is_none(),
        "the last route takes everything else"
    );
    assert_eq!(default["route"][0]["destination"]["subset"], "v2");

    assert_eq!(dr["kind"], "DestinationRule");
    assert_eq!(dr["spec"]["host"], "frontend.shop.svc.cluster.local");
    let subsets: Vec<(String, String)> = dr["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["labels"]["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        subsets,
        vec![
            ("v1".into(), "v1".into()),
            ("v2".into(), "v2".into()),
            ("v3".into(), "v3".into())
        ]
    );
    // Every subset a route names exists.
    for route in routes {
        let subset = route["route"][0]["destination"]["subset"].as_str().unwrap();
        assert!(subsets.iter().any(|(name, _)| name == subset), "{subset}");
    }
}

#[test]
fn render_maps_versions_to_valid_subset_names() {
    let file = temp_file(
        "config.json",
        r#"{"versions": ["stable", "v2.1_RC"], "default_version": "stable"}"#,
    );
    let yaml = stdout_of(&["render", &file, "--host", "api", "--service", "api"]);
    assert!(
        yaml.contains("  - name: v2-1-rc\n    labels:\n      version: v2.1_RC\n"),
        "{yaml}"
    );
    assert!(yaml.contains("          exact: v2.1_RC\n"), "{yaml}");
    assert!(!yaml.contains("namespace:"), "no --namespace, no namespace");

    let file = temp_file(
        "config.json",
        r#"{"versions": ["v1", "-v2"], "default_version": "v1"}"#,
    );
    let out = run(&["render", &file, "--host", "api", "--service", "api"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("{file}: version \"-v2\" cannot be a DestinationRule subset name (a DNS label: a-z 0-9 -)\n")
    );
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

const GATEWAY_API_CONFIG: &str = r#"{"tag_header": "X-Shop-Version", "versions": ["v1", "v2", "v3"], "default_version": "v2", "rules": [{"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v3"}]}"#;

/// `render GATEWAY_API_CONFIG --api gateway-api --gateway shop-gw --service frontend EXTRA...`:
/// its documents (it must succeed) and their kinds.
fn render_gateway_api(extra: &[&str]) -> (Vec<Value>, Vec<String>) {
    let file = temp_file("config.json", GATEWAY_API_CONFIG);
    let common = [
        "render",
        &file,
        "--api",
        "gateway-api",
        "--gateway",
        "shop-gw",
    ];
    let docs = yaml_documents(&stdout_of(
        &[&common[..], &["--service", "frontend"], extra].concat(),
    ));
    let kinds = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    (docs, kinds)
}

#[test]
fn render_gateway_api_attaches_the_plugin_and_routes_each_tag_to_its_service() {
    let (docs, kinds) = render_gateway_api(&[
        "--gateway-namespace",
        "infra",
        "--namespace",
        "shop",
        "--port",
        "8080",
        "--host",
        "shop.example.com",
    ]);
    assert_eq!(
        kinds,
        ["WasmPlugin", "Service", "Service", "Service", "HTTPRoute"]
    );

    let plugin = &docs[0];
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(
        plugin["metadata"]["namespace"], "infra",
        "the Gateway's namespace"
    );
    assert_eq!(
        plugin["spec"]["targetRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shop-gw"}])
    );
    assert!(plugin["spec"].get("selector").is_none());
    let given: Value = serde_json::from_str(GATEWAY_API_CONFIG).unwrap();
    assert_eq!(
        plugin["spec"]["pluginConfig"], given,
        "the configuration as given"
    );
    // As the classic recipe (envoyfilter/weather/wasmplugin.yaml).
    let classic = &yaml_documents(
        &std::fs::read_to_string(repo("envoyfilter/weather/wasmplugin.yaml")).unwrap(),
    )[0]["spec"];
    for field in [
        "url",
        "sha256",
        "imagePullPolicy",
        "phase",
        "priority",
        "failStrategy",
        "match",
        "pluginName",
    ] {
        assert_eq!(plugin["spec"][field], classic[field], "{field}");
    }

    for (service, version) in docs[1..4].iter().zip(["v1", "v2", "v3"]) {
        assert_eq!(service["apiVersion"], "v1");
        assert_eq!(service["metadata"]["name"], format!("frontend-{version}"));
        assert_eq!(service["metadata"]["namespace"], "shop");
        assert_eq!(
            service["spec"]["selector"],
            serde_json::json!({"app": "frontend", "version": version})
        );
        assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    }

    let route = &docs[4];
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(
        route["spec"]["parentRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shop-gw", "namespace": "infra"}])
    );
    assert_eq!(
        route["spec"]["hostnames"],
        serde_json::json!(["shop.example.com"])
    );
    let header = |version: &str| serde_json::json!([{"headers": [{"type": "Exact", "name": "x-shop-version", "value": version}]}]);
    let backend = |name: &str| serde_json::json!([{"name": name, "port": 8080}]);
    assert_eq!(
        route["spec"]["rules"],
        serde_json::json!([
            {"matches": header("v1"), "backendRefs": backend("frontend-v1")},
            {"matches": header("v3"), "backendRefs": backend("frontend-v3")},
            {"backendRefs": backend("frontend-v2")},
        ]),
        "a rule per version but the default, then the default without a match"
    );
}

#[test]
fn render_gateway_api_mesh_and_waypoint() {
    let (docs, kinds) = render_gateway_api(&[
        "--namespace",
        "shop",
        "--gateway-namespace",
        "shop",
        "--mesh",
        "--waypoint",
        "waypoint",
    ]);
    assert_eq!(
        kinds,
        [
            "WasmPlugin",
            "Service",
            "Service",
            "Service",
            "HTTPRoute",
            "HTTPRoute",
            "WasmPlugin"
        ]
    );
    let (route, mesh) = (&docs[4], &docs[5]);
    assert_eq!(
        route["spec"]["parentRefs"][0].get("namespace"),
        None,
        "the Gateway is in the route's namespace"
    );
    assert!(
        route["spec"].get("hostnames").is_none(),
        "no --host, every host"
    );
    assert_eq!(
        mesh["spec"]["parentRefs"],
        serde_json::json!([{"group": "", "kind": "Service", "name": "frontend", "port": 80}])
    );
    assert_eq!(mesh["spec"]["rules"], route["spec"]["rules"]);
    assert_eq!(mesh["metadata"]["namespace"], "shop");
    let waypoint = &docs[6];
    assert_eq!(waypoint["metadata"]["namespace"], "shop");
    assert_eq!(
        waypoint["spec"]["targetRefs"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}])
    );
    assert_eq!(
        serde_json::to_string(&waypoint["spec"]["pluginConfig"]).unwrap(),
        r#"{"schema":1,"mode":"waypoint","tag_header":"x-shop-version","versions":["v1","v2","v3"],"default_version":"v2","restore":["header","baggage","tracestate","trace"]}"#
    );
}

#[test]
fn render_gateway_api_errors_are_one_line() {
    let file = temp_file("config.json", GATEWAY_API_CONFIG);
    let api = ["render", file.as_str(), "--api", "gateway-api"];
    let with = |extra: &[&'static str]| -> Vec<String> {
        api.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let usage: &[(Vec<String>, &str)] = &[
        (
            with(&["--service", "frontend"]),
            "render: --gateway is required; see `canary-tagger help render`",
        ),
        (with(&["--gateway", "gw"]), "render: --service is required; see `canary-tagger help render`"),
        (
            with(&["--gateway", "gw", "--gateway", "gw2", "--service", "frontend"]),
            "render: --api gateway-api takes one --gateway (the Gateway's name)",
        ),
        (
            with(&["--gateway", "gw", "--service", "Frontend"]),
            "render: --service \"Frontend\" is not a Service name (a DNS label: a-z 0-9 -, 63 at most)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--port", "0"]),
            "render: --port \"0\" is not a port (1-65535)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--host", "shop.example.com:80"]),
            "render: --host \"shop.example.com:80\" is not an HTTPRoute hostname (a lower-case DNS name, optionally starting with *.)",
        ),
        (
            with(&["--gateway", "gw", "--service", "frontend", "--name", "x"]),
            "render: --name applies to --api istio only (the names follow SERVICE)",
        ),
        (
            ["render", file.as_str(), "--host", "a", "--service", "a", "--mesh"]
                .map(String::from)
                .to_vec(),
            "render: --mesh applies to --api gateway-api only",
        ),
        (
            ["render", file.as_str(), "--host", "a", "--service", "a", "--waypoint", "w"]
                .map(String::from)
                .to_vec(),
            "render: --waypoint applies to --api gateway-api only",
        ),
    ];
    for (args, expected) in usage {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (2, ""),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr,
            format!("canary-tagger: {expected}\n"),
            "{args:?}"
        );
    }
    let long_header = "x".repeat(257);
    let invalid = [
        (
            r#"{"versions": ["v1", "v2.1"], "default_version": "v1"}"#.to_string(),
            "version \"v2.1\" cannot be in a Service name (a DNS label: a-z 0-9 -)".to_string(),
        ),
        (
            r#"{"versions": ["v1", "release-candidate-2026-12-07-build-4711-hotfix-3"], "default_version": "v1"}"#.to_string(),
            "Service name \"frontend-service-release-candidate-2026-12-07-build-4711-hotfix-3\" (frontend-service-VERSION) is longer than 63 characters".to_string(),
        ),
        (
            // The compiler accepts any token; Gateway API's HTTPHeaderName stops at 256.
            format!(r#"{{"tag_header": "{long_header}", "versions": ["v1"], "default_version": "v1"}}"#),
            format!("tag_header \"{long_header}\" is not an HTTPRoute header name (letters, digits and !#$%&'*+-.^_`|~, 256 at most)"),
        ),
    ];
    for (config, expected) in invalid {
        let file = temp_file("config.json", &config);
        let out = run(&[
            "render",
            &file,
            "--api",
            "gateway-api",
            "--gateway",
            "gw",
            "--service",
            "frontend-service",
        ]);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (1, ""),
            "{config}: {}",
            out.stderr
        );
        assert_eq!(out.stderr, format!("{file}: {expected}\n"), "{config}");
    }
}

#[test]
fn render_api_istio_is_the_default() {
    let file = repo("envoyfilter/weather/plugin-config.json");
    let file = file.to_str().unwrap();
    let args = [
        "render",
        file,
        "--host",
        "weather.example.com",
        "--service",
        "frontend",
    ];
    let default = run(&args);
    let explicit = run(&[&args[..], &["--api", "istio"]].concat());
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert_eq!(default.stdout, explicit.stdout);
    assert!(default.stdout.contains("kind: VirtualService"));
}
