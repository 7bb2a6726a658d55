"""Real-Envoy end-to-end harness for canary-tagger.

- `upstreams`: echo servers standing in for the service versions v1/v2/v3, a frontend
  that calls a backend through Envoy (S6) and a shadow that records mirrored requests (S8).
- `envoy_process`: writes an Envoy bootstrap (edge listener with the wasm filter, an
  optional internal listener without it, admin), validates it, runs Envoy, stops it.
- `spec_hash`: the normative bucket function of SPEC §3, used as an independent oracle.
"""
