//! `canary-tagger render`: the VirtualService and DestinationRule that route on the tag
//! header the configuration writes — one route and one subset per version, and a default
//! route to `default_version` for requests that carry no tag (the filter failed open).

use canary_tagger::config::CompiledConfig;
use serde::Serialize;

use crate::args::{RenderArgs, UsageError};
use crate::render_gateway_api;

pub const HELP: &str = "\
Usage: canary-tagger render FILE --host HOST --service SERVICE [options]
       canary-tagger render FILE --api gateway-api --gateway NAME --service SERVICE [options]

--api istio (the default) prints a VirtualService and a DestinationRule (YAML, ready for
kubectl apply) that route the configuration's tag header: `exact: vN` goes to subset vN
for every version, anything else to default_version; the subsets select pods by the
label `version: vN`.

      --api API          istio (default) or gateway-api
      --host HOST        the VirtualService host (e.g. shop.example.com, or the service
                         itself for mesh-internal traffic); required with --api istio
      --service SERVICE  the destination service (e.g. frontend or
                         frontend.shop.svc.cluster.local); the DestinationRule's host
      --namespace NS     metadata.namespace of the resources (default: none, kubectl's)
      --gateway GATEWAY  bind the VirtualService to this Gateway (repeatable; add `mesh`
                         to keep it for sidecars too)
      --name NAME        metadata.name of both resources (default: SERVICE's first label)

--api gateway-api prints the Kubernetes Gateway API version: a WasmPlugin attached to the
Gateway (targetRefs), a Service SERVICE-vN per version (selector app: SERVICE, version:
vN), and an HTTPRoute on the Gateway with a rule per version but the default (header
TAG = vN -> SERVICE-vN) and a last rule for everything else (-> the default's Service).

      --gateway NAME     the Gateway (gateway.networking.k8s.io) to attach to; required
      --gateway-namespace NS
                         the Gateway's namespace, where the WasmPlugin goes (default:
                         --namespace)
      --service SERVICE  the app's Service name (a DNS label; pods labelled app: SERVICE)
      --namespace NS     the namespace of the Services and routes (default: none)
      --port PORT        the Services' port and the routes' backend port (default: 80)
      --host HOST        the HTTPRoute's hostname (default: none, every host)
      --mesh             also a GAMMA HTTPRoute (parentRefs: the Service SERVICE), so
                         sidecars and waypoints route every hop by the tag
      --waypoint NAME    also a WasmPlugin on this waypoint Gateway (in --namespace),
                         with the module in waypoint mode (restores the tag on each hop)
";

/// What `render` needs besides the configuration.
pub struct Target {
    pub host: String,
    pub service: String,
    pub namespace: Option<String>,
    pub gateways: Vec<String>,
    pub name: String,
}

pub fn target_from(parsed: &RenderArgs) -> Result<Target, UsageError> {
    let host = required("--host", &parsed.host)?;
    let service = required("--service", &parsed.service)?;
    if let Some(flag) = render_gateway_api::flags_given(parsed).first() {
        return Err(UsageError(format!(
            "render: {flag} applies to --api gateway-api only"
        )));
    }
    for (flag, text) in [("--host", &host), ("--service", &service)] {
        if text.trim().is_empty() || text.chars().any(char::is_whitespace) {
            return Err(UsageError(format!(
                "render: {flag} {text:?} is not a host name"
            )));
        }
    }
    let name = match &parsed.name {
        Some(name) => name.clone(),
        None => service
            .split('.')
            .next()
            .unwrap_or(&service)
            .to_ascii_lowercase(),
    };
    if !is_dns_label(&name) {
        return Err(UsageError(format!(
            "render: {name:?} is not a valid resource name (a DNS label: a-z 0-9 -); give --name"
        )));
    }
    let namespace = namespace_flag("--namespace", &parsed.namespace)?;
    Ok(Target {
        host,
        service,
        namespace,
        gateways: parsed.gateway.clone(),
        name,
    })
}

/// The value of a flag the command needs (clap is not told: which ones depends on --api).
pub fn required(flag: &str, value: &Option<String>) -> Result<String, UsageError> {
    value.clone().ok_or_else(|| missing(flag))
}

/// `render: FLAG is required`, worded as clap's missing flags are (args.rs).
pub fn missing(flag: &str) -> UsageError {
    UsageError(format!(
        "render: {flag} is required; see `canary-tagger help render`"
    ))
}

/// A namespace flag's value, checked: a DNS label.
pub fn namespace_flag(flag: &str, value: &Option<String>) -> Result<Option<String>, UsageError> {
    if let Some(namespace) = value {
        if !is_dns_label(namespace) {
            return Err(UsageError(format!(
                "render: {flag} {namespace:?} is not a valid namespace (a DNS label: a-z 0-9 -)"
            )));
        }
    }
    Ok(value.clone())
}

/// RFC 1123 label, as Kubernetes names and Istio subset names must be.
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// A Kubernetes label value: 63 at most, alphanumeric at both ends.
fn is_label_value(text: &str) -> bool {
    text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && text
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The subset name of a version: Istio wants a DNS label, versions may hold `.`, `_` and
/// capitals (`v1.2` → `v1-2`).
pub fn subset_name(version: &str) -> String {
    version
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            '.' | '_' => '-',
            other => other,
        })
        .collect()
}

/// A Kubernetes object as `render` writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<Spec> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Serialize)]
pub struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    labels: Labels,
}

impl Metadata {
    /// Named, in `namespace` if given, labelled as managed by canary-tagger.
    pub fn new(name: String, namespace: Option<String>) -> Metadata {
        Metadata {
            name,
            namespace,
            labels: Labels {
                managed_by: "canary-tagger",
            },
        }
    }
}

#[derive(Serialize)]
struct Labels {
    #[serde(rename = "app.kubernetes.io/managed-by")]
    managed_by: &'static str,
}

#[derive(Serialize)]
struct VirtualServiceSpec {
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gateways: Vec<String>,
    http: Vec<HttpRoute>,
}

#[derive(Serialize)]
struct HttpRoute {
    name: String,
    #[serde(rename = "match", skip_serializing_if = "Vec::is_empty")]
    matches: Vec<RouteMatch>,
    route: Vec<RouteDestination>,
}

#[derive(Serialize)]
struct RouteMatch {
    headers: std::collections::BTreeMap<String, ExactMatch>,
}

#[derive(Serialize)]
struct ExactMatch {
    exact: String,
}

#[derive(Serialize)]
struct RouteDestination {
    destination: Destination,
}

#[derive(Serialize)]
struct Destination {
    host: String,
    subset: String,
}

#[derive(Serialize)]
struct DestinationRuleSpec {
    host: String,
    subsets: Vec<Subset>,
}

#[derive(Serialize)]
struct Subset {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
}

/// The YAML (two documents), or why the versions cannot become subsets.
pub fn render(config: &CompiledConfig, target: &Target, source: &str) -> Result<String, String> {
    let subsets = subsets(config)?;
    let metadata = || Metadata::new(target.name.clone(), target.namespace.clone());
    let http = http_routes(config, target, &subsets);
    let virtual_service = Resource {
        api_version: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: metadata(),
        spec: VirtualServiceSpec {
            hosts: vec![target.host.clone()],
            gateways: target.gateways.clone(),
            http,
        },
    };
    let destination_rule = Resource {
        api_version: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: metadata(),
        spec: DestinationRuleSpec {
            host: target.service.clone(),
            subsets: subsets
                .iter()
                .map(|(version, subset)| Subset {
                    name: subset.clone(),
                    labels: [("version".to_string(), version.clone())].into(),
                })
                .collect(),
        },
    };
    let mut out = header(config, source);
    out.push_str(&yaml(&virtual_service)?);
    out.push_str("---\n");
    out.push_str(&yaml(&destination_rule)?);
    Ok(out)
}

/// Each version and its DestinationRule subset name, or why a version cannot be one.
fn subsets(config: &CompiledConfig) -> Result<Vec<(String, String)>, String> {
    let mut subsets: Vec<(String, String)> = Vec::new();
    for version in config.versions() {
        let subset = subset_name(version);
        if !is_dns_label(&subset) {
            return Err(format!(
                "version {version:?} cannot be a DestinationRule subset name (a DNS label: a-z 0-9 -)"
            ));
        }
        if !is_label_value(version) {
            return Err(format!(
                "version {version:?} cannot be a pod label value (alphanumeric at both ends)"
            ));
        }
        if let Some((other, _)) = subsets.iter().find(|(_, s)| *s == subset) {
            return Err(format!(
                "versions {other:?} and {version:?} both become subset {subset:?}"
            ));
        }
        subsets.push((version.to_string(), subset));
    }
    Ok(subsets)
}

/// A route per version, matching its tag, then the default version's route.
fn http_routes(
    config: &CompiledConfig,
    target: &Target,
    subsets: &[(String, String)],
) -> Vec<HttpRoute> {
    let destination = |subset: &str| RouteDestination {
        destination: Destination {
            host: target.service.clone(),
            subset: subset.to_string(),
        },
    };
    let default_version = config.version_name(config.default_version);
    let mut http: Vec<HttpRoute> = subsets
        .iter()
        .map(|(version, subset)| HttpRoute {
            name: format!("{}-{subset}", target.name),
            matches: vec![RouteMatch {
                headers: [(
                    config.tag_header.clone(),
                    ExactMatch {
                        exact: version.clone(),
                    },
                )]
                .into(),
            }],
            route: vec![destination(subset)],
        })
        .collect();
    http.push(HttpRoute {
        name: format!("{}-default", target.name),
        matches: Vec::new(),
        route: vec![destination(&subset_name(default_version))],
    });
    http
}

/// The comment that opens every rendering.
pub fn header(config: &CompiledConfig, source: &str) -> String {
    format!(
        "# Generated by `canary-tagger render` from {source}.\n\
         # canary-tagger writes the version into the {tag} header at the gateway; these\n\
         # route on it. Requests without a tag (the filter failed open) go to {default_version}.\n",
        tag = config.tag_header,
        default_version = config.version_name(config.default_version),
    )
}

pub fn yaml<T: Serialize>(value: &T) -> Result<String, String> {
    serde_norway::to_string(value).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(subset_name("v1.2_RC"), "v1-2-rc");
        assert!(is_dns_label("frontend"));
        assert!(!is_dns_label("Frontend"));
        assert!(!is_dns_label("-a"));
        assert!(is_label_value("v1.2_rc"));
        assert!(!is_label_value("v1-"));
    }
}
