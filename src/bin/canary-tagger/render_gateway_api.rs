//! `canary-tagger render --api gateway-api`: the same routing as the Istio API rendering
//! (render.rs), written with the Kubernetes Gateway API — a WasmPlugin attached to the
//! Gateway by `targetRefs`, one Service per version, and an HTTPRoute that sends each tag
//! to its version's Service; with `--mesh` the same rules as a GAMMA route for the mesh
//! hops, with `--waypoint` the module in waypoint mode on that waypoint.

use canary_tagger::config::CompiledConfig;
use serde::Serialize;
use serde_json::Value;

use crate::args::{RenderApi, RenderArgs, UsageError};
use crate::render::{
    self, is_dns_label, missing, namespace_flag, required, yaml, Metadata, Resource,
};

/// What `render --api gateway-api` needs besides the configuration.
pub struct Target {
    pub gateway: String,
    pub gateway_namespace: Option<String>,
    pub service: String,
    pub namespace: Option<String>,
    pub port: u16,
    pub host: Option<String>,
    pub mesh: bool,
    pub waypoint: Option<String>,
}

/// The flags only `--api gateway-api` takes that were given, in the order of the usage line.
pub fn flags_given(parsed: &RenderArgs) -> Vec<&'static str> {
    [
        ("--gateway-namespace", parsed.gateway_namespace.is_some()),
        ("--port", parsed.port.is_some()),
        ("--mesh", parsed.mesh),
        ("--waypoint", parsed.waypoint.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

pub fn target_from(parsed: &RenderArgs) -> Result<Target, UsageError> {
    debug_assert_eq!(parsed.api, RenderApi::GatewayApi);
    if parsed.name.is_some() {
        return Err(UsageError(
            "render: --name applies to --api istio only (the names follow SERVICE)".into(),
        ));
    }
    let gateway = match parsed.gateway.as_slice() {
        [] => return Err(missing("--gateway")),
        [gateway] => object_name("--gateway", gateway)?,
        [_, _, ..] => {
            return Err(UsageError(
                "render: --api gateway-api takes one --gateway (the Gateway's name)".into(),
            ))
        }
    };
    let service = required("--service", &parsed.service)?;
    if !is_dns_label(&service) {
        return Err(UsageError(format!(
            "render: --service {service:?} is not a Service name (a DNS label: a-z 0-9 -, 63 at most)"
        )));
    }
    let waypoint = match &parsed.waypoint {
        Some(name) => Some(object_name("--waypoint", name)?),
        None => None,
    };
    Ok(Target {
        gateway,
        gateway_namespace: namespace_flag("--gateway-namespace", &parsed.gateway_namespace)?
            .or_else(|| parsed.namespace.clone()),
        namespace: namespace_flag("--namespace", &parsed.namespace)?,
        service,
        port: port_from(parsed.port.as_deref())?,
        host: hostname_from(parsed.host.as_deref())?,
        mesh: parsed.mesh,
        waypoint,
    })
}

/// A Gateway's name: a DNS subdomain (RFC 1123), as Kubernetes object names are.
fn object_name(flag: &str, name: &str) -> Result<String, UsageError> {
    if name.len() <= 253 && name.split('.').all(is_dns_label) {
        Ok(name.to_string())
    } else {
        Err(UsageError(format!(
            "render: {flag} {name:?} is not a Gateway name (a DNS name: a-z 0-9 - .)"
        )))
    }
}

fn port_from(text: Option<&str>) -> Result<u16, UsageError> {
    match text.map(str::parse::<u16>) {
        None => Ok(80),
        Some(Ok(port)) if port > 0 => Ok(port),
        Some(_) => Err(UsageError(format!(
            "render: --port {:?} is not a port (1-65535)",
            text.unwrap_or_default()
        ))),
    }
}

/// An HTTPRoute hostname: a lower-case DNS name, optionally `*.` first (no IP, no port).
fn hostname_from(text: Option<&str>) -> Result<Option<String>, UsageError> {
    let Some(host) = text else {
        return Ok(None);
    };
    let name = host.strip_prefix("*.").unwrap_or(host);
    let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if host.len() <= 253 && !numeric && name.split('.').all(is_dns_label) {
        Ok(Some(host.to_string()))
    } else {
        Err(UsageError(format!(
            "render: --host {host:?} is not an HTTPRoute hostname (a lower-case DNS name, \
             optionally starting with *.)"
        )))
    }
}

/// Gateway API's HTTPHeaderName: `^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`, 256 at most.
fn is_http_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why the configuration's tag header or versions cannot be written as Gateway API
/// objects for `service`, if they cannot.
fn check_names(config: &CompiledConfig, service: &str) -> Result<(), String> {
    if !is_http_header_name(&config.tag_header) {
        return Err(format!(
            "tag_header {:?} is not an HTTPRoute header name (letters, digits and \
             !#$%&'*+-.^_`|~, 256 at most)",
            config.tag_header
        ));
    }
    for version in config.versions() {
        if !is_dns_label(version) {
            return Err(format!(
                "version {version:?} cannot be in a Service name (a DNS label: a-z 0-9 -)"
            ));
        }
        let name = format!("{service}-{version}");
        if name.len() > 63 {
            return Err(format!(
                "Service name {name:?} ({service}-VERSION) is longer than 63 characters"
            ));
        }
    }
    // The route's rules: one per version but the default, and the default's; 16 at most.
    if config.versions().len() > 16 {
        return Err("more than 16 versions: an HTTPRoute holds 16 rules at most".into());
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmPluginSpec<'a> {
    target_refs: Vec<ObjectRef>,
    url: &'static str,
    sha256: &'static str,
    image_pull_policy: &'static str,
    phase: &'static str,
    priority: u32,
    fail_strategy: &'static str,
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    traffic: Vec<TrafficSelector>,
    plugin_name: &'static str,
    plugin_config: &'a Value,
}

#[derive(Serialize)]
struct ObjectRef {
    group: &'static str,
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl ObjectRef {
    fn gateway(name: &str, namespace: Option<String>) -> ObjectRef {
        ObjectRef {
            group: "gateway.networking.k8s.io",
            kind: "Gateway",
            namespace,
            name: name.to_string(),
            port: None,
        }
    }
}

#[derive(Serialize)]
struct TrafficSelector {
    mode: &'static str,
}

/// The classic recipe's WasmPlugin (envoyfilter/weather/wasmplugin.yaml) attached by
/// `targetRefs` instead of a pod selector. `traffic`: the classic CLIENT on a gateway (Istio
/// treats its listeners as outbound); none (every mode) on a waypoint.
fn wasm_plugin<'a>(
    metadata: Metadata,
    gateway: &str,
    traffic: Vec<TrafficSelector>,
    plugin_config: &'a Value,
) -> Resource<WasmPluginSpec<'a>> {
    Resource {
        api_version: "extensions.istio.io/v1alpha1",
        kind: "WasmPlugin",
        metadata,
        spec: WasmPluginSpec {
            target_refs: vec![ObjectRef::gateway(gateway, None)],
            url: concat!(
                "oci://ghcr.io/OWNER/canary-tagger:",
                env!("CARGO_PKG_VERSION")
            ),
            sha256: "",
            image_pull_policy: "IfNotPresent",
            phase: "AUTHZ",
            priority: 10,
            fail_strategy: "FAIL_OPEN",
            traffic,
            plugin_name: "canary-tagger",
            plugin_config,
        },
    }
}

/// The waypoint's configuration: the gateway's versions, restored on every hop.
#[derive(Serialize)]
struct WaypointConfig<'a> {
    schema: u32,
    mode: &'static str,
    tag_header: &'a str,
    versions: Vec<&'a str>,
    default_version: &'a str,
    restore: [&'static str; 4],
}

fn waypoint_config(config: &CompiledConfig) -> Result<Value, String> {
    serde_json::to_value(WaypointConfig {
        schema: 1,
        mode: "waypoint",
        tag_header: &config.tag_header,
        versions: config.versions().into_iter().collect(),
        default_version: config.version_name(config.default_version),
        restore: ["header", "baggage", "tracestate", "trace"],
    })
    .map_err(|error| error.to_string())
}

#[derive(Serialize)]
struct ServiceSpec {
    selector: Selector,
    ports: Vec<ServicePort>,
}

#[derive(Serialize)]
struct Selector {
    app: String,
    version: String,
}

#[derive(Serialize)]
struct ServicePort {
    name: &'static str,
    port: u16,
}

fn version_service(target: &Target, version: &str) -> Resource<ServiceSpec> {
    Resource {
        api_version: "v1",
        kind: "Service",
        metadata: Metadata::new(
            format!("{}-{version}", target.service),
            target.namespace.clone(),
        ),
        spec: ServiceSpec {
            selector: Selector {
                app: target.service.clone(),
                version: version.to_string(),
            },
            ports: vec![ServicePort {
                name: "http",
                port: target.port,
            }],
        },
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpRouteSpec {
    parent_refs: Vec<ObjectRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hostnames: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matches: Vec<RouteMatch>,
    backend_refs: Vec<BackendRef>,
}

#[derive(Serialize)]
struct RouteMatch {
    headers: Vec<HeaderMatch>,
}

#[derive(Serialize)]
struct HeaderMatch {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    value: String,
}

#[derive(Serialize)]
struct BackendRef {
    name: String,
    port: u16,
}

/// A rule per version but the default (its tag → its Service), then the default's rule
/// without a match: untagged requests (the filter failed open) and the default's own tag.
fn rules(config: &CompiledConfig, target: &Target) -> Vec<Rule> {
    let backend = |version: &str| BackendRef {
        name: format!("{}-{version}", target.service),
        port: target.port,
    };
    let default_version = config.version_name(config.default_version);
    let mut rules: Vec<Rule> = config
        .versions()
        .into_iter()
        .filter(|version| *version != default_version)
        .map(|version| Rule {
            matches: vec![RouteMatch {
                headers: vec![HeaderMatch {
                    kind: "Exact",
                    name: config.tag_header.clone(),
                    value: version.to_string(),
                }],
            }],
            backend_refs: vec![backend(version)],
        })
        .collect();
    rules.push(Rule {
        matches: Vec::new(),
        backend_refs: vec![backend(default_version)],
    });
    rules
}

fn http_route(name: String, target: &Target, spec: HttpRouteSpec) -> Resource<HttpRouteSpec> {
    Resource {
        api_version: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: Metadata::new(name, target.namespace.clone()),
        spec,
    }
}

/// The Gateway's route: parentRefs the Gateway, with its namespace when it is another.
fn gateway_route(config: &CompiledConfig, target: &Target) -> Resource<HttpRouteSpec> {
    let namespace = match &target.gateway_namespace {
        Some(namespace) if Some(namespace) != target.namespace.as_ref() => Some(namespace.clone()),
        _ => None,
    };
    let spec = HttpRouteSpec {
        parent_refs: vec![ObjectRef::gateway(&target.gateway, namespace)],
        hostnames: target.host.iter().cloned().collect(),
        rules: rules(config, target),
    };
    http_route(target.service.clone(), target, spec)
}

/// The GAMMA route: the same rules for every caller of the Service inside the mesh.
fn mesh_route(config: &CompiledConfig, target: &Target) -> Resource<HttpRouteSpec> {
    let spec = HttpRouteSpec {
        parent_refs: vec![ObjectRef {
            group: "",
            kind: "Service",
            namespace: None,
            name: target.service.clone(),
            port: Some(target.port),
        }],
        hostnames: Vec::new(),
        rules: rules(config, target),
    };
    http_route(format!("{}-mesh", target.service), target, spec)
}

/// The YAML stream, or why the configuration cannot be written as these objects.
/// `plugin_config` is the configuration as given, for the gateway's WasmPlugin.
pub fn render(
    config: &CompiledConfig,
    plugin_config: &Value,
    target: &Target,
    source: &str,
) -> Result<String, String> {
    check_names(config, &target.service)?;
    let gateway_plugin = wasm_plugin(
        Metadata::new("canary-tagger".into(), target.gateway_namespace.clone()),
        &target.gateway,
        vec![TrafficSelector { mode: "CLIENT" }],
        plugin_config,
    );
    let mut documents = vec![yaml(&gateway_plugin)?];
    for version in config.versions() {
        documents.push(yaml(&version_service(target, version))?);
    }
    documents.push(yaml(&gateway_route(config, target))?);
    if target.mesh {
        documents.push(yaml(&mesh_route(config, target))?);
    }
    if let Some(waypoint) = &target.waypoint {
        let waypoint_config = waypoint_config(config)?;
        let metadata = Metadata::new("canary-tagger-waypoint".into(), target.namespace.clone());
        documents.push(yaml(&wasm_plugin(
            metadata,
            waypoint,
            Vec::new(),
            &waypoint_config,
        ))?);
    }
    Ok(format!(
        "{}{}",
        render::header(config, source),
        documents.join("---\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_gateway_apis_pattern() {
        assert!(is_http_header_name("x-canary-version"));
        assert!(is_http_header_name("X_Odd!#$%&'*+.^`|~"));
        assert!(is_http_header_name(&"x".repeat(256)));
        assert!(!is_http_header_name(&"x".repeat(257)));
        for bad in ["", "x canary", "x:canary", "x/canary", "x\"y", "é"] {
            assert!(!is_http_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_gateway_names_and_ports() {
        for good in ["shop.example.com", "*.example.com", "localhost"] {
            assert!(hostname_from(Some(good)).is_ok(), "{good}");
        }
        for bad in [
            "Shop.example.com",
            "10.0.0.1",
            "a..b",
            "*",
            "shop.example.com:80",
            "",
        ] {
            assert!(hostname_from(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(object_name("--gateway", "istio-system.gw").is_ok());
        assert!(object_name("--gateway", "Gw").is_err());
        assert_eq!(port_from(None).ok(), Some(80));
        assert_eq!(port_from(Some("65535")).ok(), Some(65535));
        for bad in ["0", "65536", "-1", "http"] {
            assert!(port_from(Some(bad)).is_err(), "{bad}");
        }
    }
}
