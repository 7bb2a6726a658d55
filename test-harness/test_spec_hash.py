"""The Python oracle of SPEC §3 reproduces the SPEC's own test vectors.

S5 and S7 compare the version Envoy answered with for each user against this oracle, so
the oracle must be right first.
"""

import pytest

from canary_e2e.spec_hash import bucket, split_version

SPEC_VECTORS = [
    ("android-half", "alice", 5246),
    ("android-half", "bob", 3219),
    ("ramp", "203.0.113.7", 5199),
    ("ramp", "2001:db8::1", 6769),
    ("", "", 1709),
]


@pytest.mark.parametrize("salt,key,expected", SPEC_VECTORS)
def test_bucket_matches_spec_vectors(salt, key, expected):
    assert bucket(salt, key) == expected


def test_weights_are_consecutive_ranges_in_listed_order():
    weights = [{"version": "v2", "percent": 52.46}, {"version": "v1", "percent": 47.54}]
    # alice is in bucket 5246: just outside a 52.46 % first range, inside a 52.47 % one.
    assert split_version(weights, "android-half", "alice") == "v1"
    weights = [{"version": "v2", "percent": 52.47}, {"version": "v1", "percent": 47.53}]
    assert split_version(weights, "android-half", "alice") == "v2"
