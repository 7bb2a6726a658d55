"""canary-tagger's Prometheus labels: the plain-Envoy fragment and the Istio way agree.

envoyfilter/metrics/stats-tags.yaml is what every real-Envoy test, `make run` and the
compose demo load (the e2e tests prove Envoy extracts the labels with it;
src/metrics.rs checks it has one regex per label the filter writes). On a gateway, Istio
writes the regexes itself from the `extraStatTags` of ingressgateway-stats-tags-patch.yaml:
for each name, `(<name>=\\.=(.*?);\\.;)` (istio/istio tools/packaging/common/envoy_bootstrap.json,
unchanged since Istio 1.7). So the patch must list exactly the fragment's tag names, and
the regex Istio generates for each must be the fragment's.
"""

from __future__ import annotations

import json

import yaml

from recipes import ISTIO_STATS_TAGS_PATCH, STATS_TAGS, docs, rel


def stats_tags() -> list[dict]:
    (fragment,) = docs(STATS_TAGS)
    # A bootstrap fragment that changes nothing but the tags (Envoy's defaults stay on).
    assert list(fragment) == ["stats_config"] and list(fragment["stats_config"]) == ["stats_tags"]
    tags = fragment["stats_config"]["stats_tags"]
    for tag in tags:
        assert set(tag) == {"tag_name", "regex"}, tag
    return tags


def istio_generated_regex(tag_name: str) -> str:
    """The stats_tags regex Istio's bootstrap template writes for one extraStatTags entry."""
    return f"({tag_name}=\\.=(.*?);\\.;)"


def istio_proxy_config() -> dict:
    (patch,) = docs(ISTIO_STATS_TAGS_PATCH)
    # A strategic-merge patch of the gateway Deployment's pod template, nothing else.
    assert list(patch) == ["spec"] and list(patch["spec"]) == ["template"]
    assert list(patch["spec"]["template"]) == ["metadata"]
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["proxy.istio.io/config"]
    # Istio reads the annotation as ProxyConfig in YAML (JSON is YAML); JSON here, like
    # mqtt's topology patch, so that it parses the same with either reader.
    text = annotations["proxy.istio.io/config"]
    proxy_config = json.loads(text)
    assert yaml.safe_load(text) == proxy_config
    return proxy_config


def test_istio_patch_lists_the_fragments_tags():
    proxy_config = istio_proxy_config()
    # ProxyConfig.extra_stat_tags (istio/api mesh/v1alpha1/proxy.proto): a list of names.
    assert list(proxy_config) == ["extraStatTags"]
    names = proxy_config["extraStatTags"]
    assert isinstance(names, list) and all(isinstance(n, str) and n for n in names)
    assert len(set(names)) == len(names), "Envoy refuses a tag name given twice"
    assert names == [tag["tag_name"] for tag in stats_tags()]


def test_istio_generates_the_regexes_the_envoy_tests_use():
    tags = stats_tags()
    assert tags, f"{rel(STATS_TAGS)} has no tags"
    for tag in tags:
        assert tag["regex"] == istio_generated_regex(tag["tag_name"]), tag
    generated = [{"tag_name": n, "regex": istio_generated_regex(n)}
                 for n in istio_proxy_config()["extraStatTags"]]
    assert generated == tags


def test_the_recipe_is_documented_where_users_look():
    readme = (STATS_TAGS.parent / "README.md").read_text()
    for name in (STATS_TAGS.name, ISTIO_STATS_TAGS_PATCH.name):
        assert name in readme
    metrics_doc = (STATS_TAGS.parents[2] / "docs" / "metrics.md").read_text()
    assert f"envoyfilter/metrics/{ISTIO_STATS_TAGS_PATCH.name}" in metrics_doc
    assert f"extraStatTags: [{', '.join(istio_proxy_config()['extraStatTags'])}]" in metrics_doc
