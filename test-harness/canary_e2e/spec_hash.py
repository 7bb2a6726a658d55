"""SPEC §3 bucket function, written independently of the Rust engine.

The e2e tests use it as an oracle: for a split keyed on a cookie, the version Envoy answers
with must be the one the normative hash predicts. The SPEC's test vectors are checked in
test_spec_hash.py so this oracle itself is trusted.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
BUCKETS = 10_000


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK64
    return h


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finalizer."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def bucket(salt: str, key: str) -> int:
    return fmix64(fnv1a64(f"{salt}:{key}".encode())) % BUCKETS


def split_version(weights: list[dict], salt: str, key: str) -> str:
    """The version a split gives `key`: weights are consecutive bucket ranges in listed order."""
    b = bucket(salt, key)
    upper = 0
    for weight in weights:
        upper += round(weight["percent"] * 100)
        if b < upper:
            return weight["version"]
    raise ValueError(f"weights {weights} do not cover bucket {b}")
