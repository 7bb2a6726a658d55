"""A Gateway API HTTPRoute as Envoy routes, for the e2e tests of `render --api gateway-api`.

A small translator, not Istio's: enough of the HTTPRoute spec (gateway.networking.k8s.io/v1)
for the routes canary-tagger renders and the precedence tests around them —

- a rule's `matches` are OR-ed, each match's conditions AND-ed; a rule without `matches`
  matches everything (the spec's default: `path: {type: PathPrefix, value: /}`);
- path `Exact` and `PathPrefix` (prefix on whole path segments), headers and query
  parameters `Exact` and `RegularExpression` (whole value), `method`;
- `backendRefs` to a cluster each, weighted when there are several;
- a rule's `RequestMirror` filters (`requestMirror.backendRef` only, no `percent` or
  `fraction`): every request the rule routes is also copied to that backend's cluster
  (Envoy's `request_mirror_policies`). No other filter type.

Precedence, as the spec orders the matches of the rules of one route: an Exact path first,
then the longest PathPrefix, then a method match, then the most header matches, then the
most query parameter matches, and among matches still tied the first rule (in list order),
then the first match within it. Envoy takes the first route that matches, so the routes
are emitted in that order.
"""

from __future__ import annotations

from typing import Callable

DEFAULT_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}


def _precedence(match: dict, rule_index: int, match_index: int) -> tuple:
    path = match.get("path", DEFAULT_MATCH["path"])
    exact = path.get("type", "PathPrefix") == "Exact"
    return (not exact, -len(path.get("value", "/")), "method" not in match,
            -len(match.get("headers", [])), -len(match.get("queryParams", [])),
            rule_index, match_index)


def _string_match(condition: dict) -> dict:
    kind = condition.get("type", "Exact")
    if kind == "Exact":
        return {"exact": condition["value"]}
    if kind == "RegularExpression":
        return {"safe_regex": {"regex": condition["value"]}}
    raise ValueError(f"match type {kind!r} is not supported by this translator")


def _path_match(path: dict) -> dict:
    kind, value = path.get("type", "PathPrefix"), path.get("value", "/")
    if kind == "Exact":
        return {"path": value}
    if kind == "PathPrefix":
        # Gateway API prefixes match whole segments: /shop matches /shop and /shop/x, not /shopping.
        return {"prefix": "/"} if value.rstrip("/") == "" else {"path_separated_prefix": value.rstrip("/")}
    raise ValueError(f"path type {kind!r} is not supported by this translator")


def envoy_match(match: dict) -> dict:
    """One HTTPRouteMatch as an Envoy RouteMatch."""
    out = _path_match(match.get("path", DEFAULT_MATCH["path"]))
    headers = [{"name": h["name"].lower(), "string_match": _string_match(h)}
               for h in match.get("headers", [])]
    if "method" in match:
        headers.append({"name": ":method", "string_match": {"exact": match["method"]}})
    if headers:
        out["headers"] = headers
    if match.get("queryParams"):
        out["query_parameters"] = [{"name": q["name"], "string_match": _string_match(q)}
                                   for q in match["queryParams"]]
    return out


def _mirror_policies(filters: list[dict], cluster_for: Callable[[dict], str]) -> list[dict]:
    policies = []
    for route_filter in filters:
        if route_filter.get("type") != "RequestMirror":
            raise ValueError(f"filter type {route_filter.get('type')!r} is not supported by this translator")
        mirror = route_filter["requestMirror"]
        if set(mirror) != {"backendRef"}:
            raise ValueError(f"requestMirror fields {sorted(set(mirror) - {'backendRef'})} "
                             f"are not supported by this translator")
        policies.append({"cluster": cluster_for(mirror["backendRef"])})
    return policies


def _action(rule: dict, cluster_for: Callable[[dict], str]) -> dict:
    backend_refs = rule["backendRefs"]
    if len(backend_refs) == 1:
        action = {"cluster": cluster_for(backend_refs[0]), "timeout": "10s"}
    else:
        action = {"weighted_clusters": {"clusters": [
            {"name": cluster_for(ref), "weight": ref.get("weight", 1)} for ref in backend_refs]},
            "timeout": "10s"}
    mirrors = _mirror_policies(rule.get("filters", []), cluster_for)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    return action


def envoy_routes(route: dict, cluster_for: Callable[[dict], str]) -> list[dict]:
    """The rules of one HTTPRoute as Envoy routes, in Gateway API precedence order.
    `cluster_for(backendRef)` names the Envoy cluster of a backend."""
    entries = []
    for rule_index, rule in enumerate(route["spec"]["rules"]):
        for match_index, match in enumerate(rule.get("matches") or [DEFAULT_MATCH]):
            entries.append((_precedence(match, rule_index, match_index), {
                "name": f"rule-{rule_index}-match-{match_index}",
                "match": envoy_match(match),
                "route": _action(rule, cluster_for),
            }))
    return [envoy_route for _, envoy_route in sorted(entries, key=lambda entry: entry[0])]
