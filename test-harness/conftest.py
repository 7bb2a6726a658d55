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
import shutil
import subprocess
import time

import pytest

from canary_e2e.envoy_process import ENVOY_BIN, EnvoyUnderTest, failure_sections

_TEST_STARTED = pytest.StashKey[float]()

# `make e2e-compat` runs the tests marked `compat` on the older Envoys Istio ships: the SPEC
# §5 scenarios, the invalid configuration, reload under load (these modules) and every
# case that names a spoof (client-sent tags, XFF and baggage spoofs, the stripped counter),
# and waypoint mode with tracestate, one replica and two (SPEC §12), also under Envoy's
# OpenTelemetry tracer.
COMPAT_MODULES = frozenset({
    "test_s1_grpc_normalize.py", "test_s2_user_agent.py", "test_s3_cookie.py", "test_s4_client_ip.py",
    "test_s5_android_split.py", "test_s6_no_version_crossing.py", "test_s7_progressive.py",
    "test_s8_mirror.py", "test_s9_spoofed_tag.py", "test_invalid_config.py", "test_reload_under_load.py",
    "test_waypoint.py", "test_waypoint_replicas.py", "test_tracestate_otel.py",
    # `canary-tagger status` reads the admin pages of the Envoys Istio ships, not only 1.40's.
    "test_status.py",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in COMPAT_MODULES or "spoof" in item.nodeid.lower():
            item.add_marker(pytest.mark.compat)


def pytest_report_header(config):
    try:
        version = subprocess.run([str(ENVOY_BIN), "--version"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout.strip()
    except OSError as exc:
        version = f"not runnable: {exc}"
    return f"envoy: {ENVOY_BIN}: {version}"


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_TEST_STARTED] = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report shows, for each Envoy it used, the requests sent last (the one
    that failed is the newest) and the end of Envoy's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        report.sections.extend(failure_sections(item.stash.get(_TEST_STARTED, 0.0)))


@pytest.fixture
def prometheus_binary() -> str:
    """The `prometheus` binary (canary_e2e/prometheus.py runs it); the test is skipped
    without it."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return binary
