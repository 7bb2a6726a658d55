"""Fixtures shared by the real-Envoy e2e tests.

    envoy_with(plugin_config, **options) -> EnvoyUnderTest   (module-scoped factory)

Calling it twice with the same config and options in one test module returns the same
running Envoy, so a table of cases costs one Envoy start. Options are those of
`canary_e2e.envoy_process.EnvoyUnderTest`: `filter_mode="none"` (or plugin_config=None) for
a plain Envoy, `lua_code=...` for a Lua filter instead of the wasm module,
`topology="frontend_backend"`, `mirror=True`, `concurrency`, `log_level`, ...

    http2   parametrizes a test over HTTP/1.1 and HTTP/2 (h2c prior knowledge): ids
            [http1] and [http2]; pass it on as envoy.request(..., http2=http2).
"""

from __future__ import annotations

import json

import pytest

from canary_e2e.envoy_process import EnvoyUnderTest


@pytest.fixture(params=[False, True], ids=["http1", "http2"])
def http2(request) -> bool:
    return request.param


@pytest.fixture(scope="module")
def envoy_with(tmp_path_factory):
    running: dict[str, EnvoyUnderTest] = {}

    def start(plugin_config: dict | None = None, **options) -> EnvoyUnderTest:
        key = json.dumps([plugin_config, options], sort_keys=True, default=str)
        if key not in running:
            envoy = EnvoyUnderTest(plugin_config, work_dir=tmp_path_factory.mktemp("envoy"), **options)
            running[key] = envoy.start()
        return running[key]

    yield start
    for envoy in reversed(list(running.values())):
        envoy.stop()
