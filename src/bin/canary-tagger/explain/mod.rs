//! `canary-tagger explain`: one request through the engine, and every step of the decision
//! in words (or JSON) — which rule decided, the split key and bucket, the client address
//! and where it came from, the client's tag, and what the filter writes into the request and
//! the response.

//!
//! By job: [`flags`] builds the request from the command line, [`gateway`] traces a gateway
//! configuration's decision into a [`report`], [`text`] renders it for people, [`ramp`]
//! describes a split's ramp, and [`sidecar`] explains a sidecar or waypoint configuration.

mod flags;
mod gateway;
mod ramp;
mod report;
pub mod sidecar;
mod text;

pub use flags::{at_from, entropy_from_seed, now, request_from};
pub use gateway::explain;
pub use ramp::{ramp_now, ramp_schedule};
pub use report::HeaderOut;
pub use text::{header_lines, render_text};

pub const HELP: &str = "\
Usage: canary-tagger explain FILE [options]

Runs one request through the decision engine with FILE's configuration and shows how the
version was decided: the rule (or default / a trusted client tag), the split key and bucket,
the client address and its source, whether a client-sent tag was stripped, header rewrites,
and the headers the filter sets on the request and the response.

Request:
  -H, --header 'NAME: VALUE'  a request header, or NAME=VALUE (repeatable; `Host:` becomes
                              :authority)
  -b, --cookie NAME=VALUE     a cookie (repeatable; sent as one cookie header)
      --ip ADDR               the peer address Envoy reports (source.address), e.g.
                              203.0.113.7, 203.0.113.7:51000 or [2001:db8::1]:443
      --xff LIST              an x-forwarded-for header as the filter sees it, i.e. with
                              the addresses Envoy appended (repeatable)
      --path PATH             :path, with the query string (default /)
      --method METHOD         :method (default GET)
      --host HOST             :authority

Sidecar mode (a configuration with mode sidecar):
      --direction DIR         inbound (what the request is remembered as) or outbound
                              (how the call's tag is restored); required
      --remembered ID=VERSION[@AGE_S]
                              an entry of Envoy's trace table, which explain cannot see:
                              trace id ID (a traceparent's trace-id field, an x-b3-traceid
                              or an x-request-id) remembered as VERSION AGE_S seconds ago
                              (default 0); repeatable

Output:
      --seed N                entropy for a split with no key present (the new sticky id
                              or the random bucket); default 0, so the output is repeatable
      --at TIME               decide with the weights a split.ramp has at TIME, an RFC 3339
                              time in UTC such as 2026-12-01T10:30:00Z (default: now)
      --json                  machine-readable output
";
