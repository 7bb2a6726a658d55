"""SPEC §2: an invalid plugin configuration is rejected with one log line naming the JSON
path and the reason, and Envoy reports the failure.

Observed with Envoy 1.40 (the wasm filter fails closed by default): `envoy --mode validate`
already loads the module and runs on_configure, so validation rejects the bootstrap; and
an Envoy started without validating exits at startup ("Unable to create Wasm plugin") —
at startup there is no previous configuration to keep serving.
"""

import pytest

from canary_e2e.envoy_process import EnvoyUnderTest, require_wasm_module

WEIGHTS_SUM_TO_90 = {
    "versions": ["v1", "v2"],
    "default_version": "v1",
    "rules": [{"name": "android", "match": {"header": "user-agent", "contains": "Android"},
               "split": {"weights": [{"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}],
                         "key": ["cookie:uid"]}}],
}
EXPECTED_REASON = "rules[0].split.weights: percents sum to 90, expected 100"


@pytest.mark.parametrize("validate,stage", [
    (True, "rejected by validation"),
    (False, "exited at startup"),
], ids=["envoy-validate", "envoy-serve"])
def test_weights_not_summing_to_100_are_refused_with_one_line_naming_the_json_path(tmp_path, validate, stage):
    require_wasm_module()
    envoy = EnvoyUnderTest(WEIGHTS_SUM_TO_90, work_dir=tmp_path)
    try:
        outcome = envoy.start_expecting_failure(validate=validate)
    finally:
        envoy.stop()
    said = f"Envoy ({outcome.stage}, code {outcome.returncode}) said:\n{outcome.output}"
    assert outcome.stage == stage, said
    assert outcome.returncode not in (None, 0), said
    reason_lines = [line for line in outcome.output.splitlines() if EXPECTED_REASON in line]
    assert len(reason_lines) == 1, said
    assert "[error][wasm]" in reason_lines[0], reason_lines[0]
    assert "Unable to create Wasm plugin canary-tagger" in outcome.output
