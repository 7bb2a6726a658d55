"""Deliver canary-tagger's configuration the way Istio does: extension config discovery.

Istio turns a WasmPlugin into an ECDS resource: the HTTP filter in the listener is only a
name plus a config source, and the Wasm filter's configuration (module, VM, pluginConfig)
arrives separately as a TypedExtensionConfig. A changed pluginConfig is a new version of
that one resource; Envoy builds the new filter config on the main thread and hands it to
the workers, and the listener is never touched.

Here the config source is a file instead of istiod's gRPC stream. `EcdsEnvoy` writes the
edge listener with

    http_filters:
    - name: canary-tagger
      config_discovery:
        config_source: {path_config_source: {path: <work>/ecds/canary.yaml}, resource_api_version: V3}
        type_urls: [type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm]

and `deliver(plugin_config)` replaces canary.yaml by an atomic rename of a fully written
file beside it. Without `watched_directory`, Envoy watches the directory for a move onto
that file name (a rename is the only atomic file replacement; a Kubernetes ConfigMap's
symlink swap would need `watched_directory`).

What Envoy 1.40 does with an update (observed with this harness, see docs/metrics.md):
- Valid: the Wasm VM is reused (vm_config is identical in every update, so the VM key is
  the same); Envoy runs on_configure once in a throw-away clone of the VM (its "canary"
  check), then each worker creates a new plugin root context with the new pluginConfig.
  Counters: update_success and config_reload rise by one.
- on_configure returns false: creating the filter config fails ("Unable to create Wasm
  plugin canary-tagger"), the update is rejected, and the workers keep the previous
  filter config. Counters: config_fail and update_rejected rise by one (config_reload
  rises too: Envoy counts the attempted hand-over). The same holds with `fail_open: true`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import yaml

from .envoy_process import REQUEST_TIMEOUT_S, EnvoyUnderTest, wasm_filter

ECDS_RESOURCE_NAME = "canary-tagger"
WASM_FILTER_TYPE_URL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
TYPED_EXTENSION_CONFIG_TYPE_URL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
# Envoy's counters for this ECDS resource (stat prefix "http_filter" + resource name).
ECDS_STATS_PREFIX = f"extension_config_discovery.http_filter.{ECDS_RESOURCE_NAME}."
# The filter's own counters as /stats shows them.
FILTER_STATS_PREFIX = "wasmcustom.canary_tagger_"
# What the filter logs, once, when on_configure rejects a configuration.
REJECTION_LOG_MARKER = "canary-tagger configuration rejected: "
# ECDS needs a node identity even when the source is a file.
NODE = {"id": "canary-e2e-gateway", "cluster": "canary-e2e"}


def ecds_http_filter(resource_path: Path) -> dict:
    """The HCM http_filters entry: a name and where its configuration comes from."""
    return {
        "name": ECDS_RESOURCE_NAME,
        "config_discovery": {
            "config_source": {
                "path_config_source": {"path": str(resource_path)},
                "resource_api_version": "V3",
            },
            "type_urls": [WASM_FILTER_TYPE_URL],
        },
    }


def ecds_resource(plugin_config: dict | str, wasm_path: Path, version_info: str,
                  fail_open: bool = False) -> dict:
    """The file content: a DiscoveryResponse with one TypedExtensionConfig holding the Wasm
    filter. `plugin_config` may be a str to deliver text that is not even JSON."""
    typed_config = wasm_filter({}, wasm_path)["typed_config"]
    typed_config["config"]["configuration"]["value"] = (
        plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config))
    if fail_open:
        typed_config["config"]["fail_open"] = True
    return {
        "version_info": version_info,
        "resources": [{
            "@type": TYPED_EXTENSION_CONFIG_TYPE_URL,
            "name": ECDS_RESOURCE_NAME,
            "typed_config": typed_config,
        }],
    }


def parse_stats(text: str) -> dict[str, int]:
    """Counters and gauges of Envoy's text /stats ("name: value"); histograms are skipped."""
    values = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(": ")
        if sep and re.fullmatch(r"-?\d+", value.strip()):
            values[name] = int(value)
    return values


_PROMETHEUS_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (-?\d+)")
_PROMETHEUS_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def series(name: str, labels: dict[str, str] | None = None) -> str:
    """One series as `name{a="x",b="y"}` (labels sorted, values escaped as in the text
    format), or `name` alone without labels: the keys of parse_prometheus()."""
    if not labels:
        return name
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return name + "{" + ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items())) + "}"


def parse_prometheus(text: str) -> tuple[dict[str, int], dict[str, str]]:
    """({series(name, labels): value}, {metric: TYPE}) from /stats/prometheus, for the
    integer samples (counters and gauges; histograms' float sums are skipped)."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        match = _PROMETHEUS_SAMPLE.fullmatch(line.strip())
        if match:
            name, label_text, value = match.groups()
            labels = {}
            for label in _PROMETHEUS_LABEL.finditer(label_text or ""):
                labels[label.group(1)] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1),
                                                label.group(2))
            key = series(name, labels)
            assert key not in samples, f"series {key} twice in /stats/prometheus"
            samples[key] = int(value)
    return samples, types


class EcdsEnvoy(EnvoyUnderTest):
    """EnvoyUnderTest whose canary-tagger filter is an ECDS entry fed from a file.

    `plugin_config` is the configuration Envoy starts with; `deliver()` changes it while
    Envoy runs. Everything else (upstreams v1/v2/v3, routes on the tag header, admin,
    request()) is EnvoyUnderTest's.
    """

    def __init__(self, plugin_config: dict, *, fail_open: bool = False, **options):
        super().__init__(plugin_config, filter_mode="wasm", **options)
        self.fail_open = fail_open
        self.resource_path = self.work_dir / "ecds" / "canary.yaml"
        self.deliveries = 0

    # -- bootstrap
    def _edge_filters(self) -> list[dict]:
        return [ecds_http_filter(self.resource_path)]

    def write_config(self) -> Path:
        if not self.resource_path.exists():
            self._write_resource(self.plugin_config)
        path = super().write_config()
        bootstrap = yaml.safe_load(path.read_text())
        bootstrap["node"] = dict(NODE)
        path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        return path

    # -- delivery
    def _write_resource(self, plugin_config: dict | str) -> float:
        self.resource_path.parent.mkdir(parents=True, exist_ok=True)
        version_info = str(self.deliveries)
        self.deliveries += 1
        text = yaml.safe_dump(ecds_resource(plugin_config, self.wasm_path, version_info,
                                            fail_open=self.fail_open), sort_keys=False)
        staging = self.resource_path.with_name(f".{self.resource_path.name}.{version_info}.tmp")
        with open(staging, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # Taken before the rename: Envoy may apply the change before this thread runs again,
        # so a time taken after it could postdate answers that already show the change.
        renaming_at = time.monotonic()
        os.rename(staging, self.resource_path)
        return renaming_at

    def deliver(self, plugin_config: dict | str) -> float:
        """Replace the filter's configuration (atomic rename of a new resource file).
        Returns time.monotonic() taken just before the rename: every request sent earlier
        was decided by an earlier configuration."""
        return self._write_resource(plugin_config)

    # -- observation
    def stats(self, contains: str | None = None) -> dict[str, int]:
        """Counters and gauges from /stats, optionally only names containing `contains`."""
        query = f"?filter={re.escape(contains)}" if contains else ""
        return parse_stats(self.admin_get(f"/stats{query}"))

    def ecds_stats(self) -> dict[str, int]:
        """This resource's ECDS counters without the prefix: config_reload, config_fail,
        update_success, update_rejected, ..."""
        return {name.removeprefix(ECDS_STATS_PREFIX): value
                for name, value in self.stats(ECDS_STATS_PREFIX).items()
                if name.startswith(ECDS_STATS_PREFIX)}

    def filter_counters(self) -> dict[str, int]:
        """Every canary-tagger counter as /stats names it (wasmcustom.canary_tagger.*)."""
        return {name: value for name, value in self.stats(FILTER_STATS_PREFIX).items()
                if name.startswith(FILTER_STATS_PREFIX)}

    def prometheus(self) -> str:
        return self.admin_get("/stats/prometheus")

    def rejection_log_lines(self, at_least: int = 0, timeout_s: float = 10.0) -> list[str]:
        """Our rejection lines in Envoy's log; with at_least, polls until that many are
        there (Envoy writes its log file every 100 ms, later on a busy machine) or
        timeout_s passed, and returns what is there then."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = [line for line in self.log_text().splitlines() if REJECTION_LOG_MARKER in line]
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def wait_for_stat(self, name: str, at_least: int, timeout_s: float, poll_s: float = 0.01) -> float | None:
        """Seconds until counter `name` (full /stats name) reached `at_least`; None on timeout."""
        start = time.monotonic()
        client = httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False)
        try:
            while True:
                text = client.get(f"{self.admin_url}/stats?filter=^{re.escape(name)}$").text
                if parse_stats(text).get(name, 0) >= at_least:
                    return time.monotonic() - start
                if time.monotonic() - start > timeout_s:
                    return None
                time.sleep(poll_s)
        finally:
            client.close()
