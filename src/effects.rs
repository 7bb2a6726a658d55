//! What a decision changes in the request and the response (SPEC §1.3, §1.5, §1.6), as a
//! list both the filter and `canary-tagger explain` read: the filter writes exactly these
//! effects through the host, `explain` shows them.
//!
//! An effect borrows from the configuration and the decision and allocates nothing; a
//! value that has to be built (the `baggage` header, a `Set-Cookie`) is built only when it
//! is written or asked for ([`SetHeader::value`], [`AddHeader::value`]). Writing allocates
//! only a `Set-Cookie` and a long `baggage`.
//!
//! The effect types do not depend on how the version was decided: any kind of decision can
//! produce them (a gateway decision today; another kind of decision would add its own
//! `*_effects` function yielding the same [`SetHeader`] and [`AddHeader`]).

use std::borrow::Cow;

use crate::baggage;
use crate::config::{CompiledConfig, StickyCookie};
use crate::engine::{ClientTag, Decision, StickyId};
use crate::request::RequestView;
use crate::trace_context;

/// A request header set to exactly one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetHeader<'a> {
    /// Lower-case.
    pub name: &'a str,
    pub value: SetValue<'a>,
    pub mode: SetMode,
}

/// How [`SetHeader`] is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Neither the request nor an earlier effect has the header: a plain add (cheaper for
    /// Envoy than a replace, which first looks for lines to drop).
    Add,
    /// Replace every line of that name.
    Replace,
    /// The header already is exactly the value (a kept client tag, a `baggage` already
    /// current): nothing to write.
    Unchanged,
    /// Remove every line of that name: the value would be empty (a client's `baggage`
    /// that held only our member, SPEC §7).
    Remove,
}

impl SetMode {
    fn add_or_replace(present: bool) -> SetMode {
        if present {
            SetMode::Replace
        } else {
            SetMode::Add
        }
    }

    fn replace_or_remove(others: bool) -> SetMode {
        if others {
            SetMode::Replace
        } else {
            SetMode::Remove
        }
    }

    /// How a carrier whose new value keeps the request's other members is written: a plain
    /// add without lines, nothing when its one line already `is_current`, else a replace.
    fn for_carrier<'a>(
        mut lines: impl Iterator<Item = &'a [u8]>,
        set_before: bool,
        is_current: impl FnOnce(&[u8]) -> bool,
    ) -> SetMode {
        match lines.next() {
            _ if set_before => SetMode::Replace,
            None => SetMode::Add,
            Some(line) if lines.next().is_none() && is_current(line) => SetMode::Unchanged,
            Some(_) => SetMode::Replace,
        }
    }
}

/// `baggage` with `canary-version=<version>` (SPEC §1.6); `set_before`: an earlier effect
/// wrote the header.
pub fn baggage_effect<'a, R: RequestView>(
    request: &'a R,
    version: &'a str,
    set_before: bool,
) -> SetHeader<'a> {
    let lines = request.header_values(baggage::HEADER);
    SetHeader {
        name: baggage::HEADER,
        value: SetValue::Baggage {
            version: Some(version),
        },
        mode: SetMode::for_carrier(lines, set_before, |line| baggage::is_current(line, version)),
    }
}

/// `tracestate` with `canary=<version>` first (SPEC §12), when the configuration asks for
/// it and the request has a valid `traceparent` (a `tracestate` without one is no trace's).
pub fn tracestate_effect<'a, R: RequestView>(
    config: &CompiledConfig,
    request: &'a R,
    version: &'a str,
    set_before: bool,
) -> Option<SetHeader<'a>> {
    let traceparent = request.header_values(trace_context::TRACEPARENT);
    if !config.tracestate || !trace_context::has_valid_traceparent(traceparent) {
        return None;
    }
    let lines = request.header_values(trace_context::TRACESTATE);
    Some(SetHeader {
        name: trace_context::TRACESTATE,
        value: SetValue::Tracestate {
            version: Some(version),
        },
        mode: SetMode::for_carrier(lines, set_before, |line| {
            trace_context::is_current(line, version)
        }),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetValue<'a> {
    /// These bytes (a version name, a `normalize` default).
    Text(&'a str),
    /// The request's `baggage` members with `canary-version=<version>` added or replaced,
    /// or (`None`) removed ([`baggage::with_version`]).
    Baggage { version: Option<&'a str> },
    /// The request's `tracestate` with `canary=<version>` first, or (`None`) without it
    /// ([`trace_context::with_version`]).
    Tracestate { version: Option<&'a str> },
}

/// A response header line added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddHeader<'a> {
    /// Lower-case.
    pub name: &'a str,
    pub value: AddValue<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AddValue<'a> {
    Text(&'a str),
    /// The `Set-Cookie` that issues sticky id `id` ([`StickyCookie::set_cookie`]).
    SetCookie {
        cookie: &'a StickyCookie,
        id: StickyId,
    },
}

/// Where effects are written: the host's header maps in the filter, a list in tests.
pub trait HeaderWriter {
    /// Adds one line (the map may then hold the name more than once).
    fn add(&mut self, name: &str, value: &[u8]);
    /// Sets the header to exactly one line.
    fn replace(&mut self, name: &str, value: &[u8]);
    /// Removes every line of that name.
    fn remove(&mut self, name: &str);
}

impl<'a> SetHeader<'a> {
    /// The value's bytes (empty for [`SetMode::Remove`]); `request` is the one the effect
    /// was made for (a `baggage` value keeps its members). Allocates for `baggage` only.
    pub fn value<R: RequestView>(&self, request: &'a R) -> Cow<'a, [u8]> {
        match self.value {
            SetValue::Text(text) => Cow::Borrowed(text.as_bytes()),
            SetValue::Baggage { version } => Cow::Owned(baggage::with_version(
                request.header_values(baggage::HEADER),
                version,
            )),
            SetValue::Tracestate { version } => Cow::Owned(trace_context::with_version(
                request.header_values(trace_context::TRACESTATE),
                version,
            )),
        }
    }

    /// Writes the effect (nothing when [`SetMode::Unchanged`]). A `baggage` or `tracestate`
    /// value is built on the stack unless it is long ([`crate::members::write`]).
    pub fn apply<R: RequestView>(&self, request: &'a R, writer: &mut impl HeaderWriter) {
        let mut write = |value: &[u8]| match self.mode {
            SetMode::Add => writer.add(self.name, value),
            SetMode::Replace => writer.replace(self.name, value),
            SetMode::Unchanged | SetMode::Remove => {}
        };
        match self.value {
            _ if self.mode == SetMode::Unchanged => {}
            _ if self.mode == SetMode::Remove => writer.remove(self.name),
            SetValue::Text(text) => write(text.as_bytes()),
            SetValue::Baggage { version } => {
                baggage::write_with_version(request.header_values(baggage::HEADER), version, write)
            }
            SetValue::Tracestate { version } => {
                let lines = request.header_values(trace_context::TRACESTATE);
                trace_context::write_with_version(lines, version, write)
            }
        }
    }
}

impl<'a> AddHeader<'a> {
    /// The value's bytes. Allocates for a `Set-Cookie` only.
    pub fn value(&self) -> Cow<'a, [u8]> {
        match self.value {
            AddValue::Text(text) => Cow::Borrowed(text.as_bytes()),
            AddValue::SetCookie { cookie, id } => {
                Cow::Owned(cookie.set_cookie(id.as_str()).into_bytes())
            }
        }
    }

    pub fn apply(&self, writer: &mut impl HeaderWriter) {
        writer.add(self.name, &self.value());
    }
}

impl Decision {
    /// The request headers to set, in order: each rewritten `normalize` header (by index),
    /// the tag header, then `baggage` when configured, or when only a client's
    /// `canary-version` member has to go (SPEC §7), then `tracestate` likewise (SPEC §12).
    ///
    /// Whether a header is present is judged on `request` as the client sent it (the one
    /// this decision was made for) and on the effects before it: a second `normalize` entry
    /// for the same header replaces what the first added.
    pub fn request_effects<'a, R: RequestView>(
        &'a self,
        config: &'a CompiledConfig,
        request: &'a R,
    ) -> impl Iterator<Item = SetHeader<'a>> + 'a {
        let present = move |name: &str| request.header_values(name).next().is_some();
        let normalized = self.normalized.iter().filter_map(move |index| {
            let entry = config.normalize.get(index)?;
            let set_before = self
                .normalized
                .iter()
                .take_while(|&earlier| earlier < index)
                .filter_map(|earlier| config.normalize.get(earlier))
                .any(|earlier| earlier.header == entry.header);
            Some(SetHeader {
                name: &entry.header,
                value: SetValue::Text(&entry.default),
                mode: SetMode::add_or_replace(set_before || present(&entry.header)),
            })
        });
        // The client tag check already looked for the tag header (and compiling rejects a
        // `normalize` entry for it, so none was set before).
        let version = config.version_name(self.version);
        let tag = SetHeader {
            name: &config.tag_header,
            value: SetValue::Text(version),
            mode: match self.client_tag {
                ClientTag::Absent => SetMode::Add,
                ClientTag::Stripped => SetMode::Replace,
                ClientTag::Kept => SetMode::Unchanged,
            },
        };
        let (baggage, tracestate) = self.carrier_effects(config, request, version);
        normalized
            .chain(std::iter::once(tag))
            .chain(baggage)
            .chain(tracestate)
    }

    /// [`Decision::request_effects`]' `baggage` and `tracestate`: each written with the
    /// version when configured, else only a client's member of ours removed (the whole
    /// header when it had no other).
    fn carrier_effects<'a, R: RequestView>(
        &'a self,
        config: &'a CompiledConfig,
        request: &'a R,
        version: &'a str,
    ) -> (Option<SetHeader<'a>>, Option<SetHeader<'a>>) {
        // A carrier the tag or a `normalize` entry already set is replaced as a whole.
        let set_before = move |name: &str| {
            config.tag_header == name
                || self
                    .normalized
                    .iter()
                    .filter_map(|index| config.normalize.get(index))
                    .any(|entry| entry.header == name)
        };
        let baggage_set_before = set_before(baggage::HEADER);
        let baggage = if config.baggage {
            Some(baggage_effect(request, version, baggage_set_before))
        } else if self.client_baggage == ClientTag::Stripped && !baggage_set_before {
            // Only the client's member goes; without other members, the whole header.
            let others = baggage::members(request.header_values(baggage::HEADER)).others;
            Some(SetHeader {
                name: baggage::HEADER,
                value: SetValue::Baggage { version: None },
                mode: SetMode::replace_or_remove(others),
            })
        } else {
            None
        };
        let tracestate_set_before = set_before(trace_context::TRACESTATE);
        let tracestate = match tracestate_effect(config, request, version, tracestate_set_before) {
            Some(effect) => Some(effect),
            None if self.client_tracestate == ClientTag::Stripped && !tracestate_set_before => {
                let lines = request.header_values(trace_context::TRACESTATE);
                Some(SetHeader {
                    name: trace_context::TRACESTATE,
                    value: SetValue::Tracestate { version: None },
                    mode: SetMode::replace_or_remove(trace_context::has_other_members(lines)),
                })
            }
            None => None,
        };
        (baggage, tracestate)
    }

    /// The response headers to add, in order: the sticky id's `Set-Cookie` when a split
    /// issued one, then `response_header` with the version.
    pub fn response_effects<'a>(
        &'a self,
        config: &'a CompiledConfig,
    ) -> impl Iterator<Item = AddHeader<'a>> + 'a {
        let set_cookie = match (self.sticky_id, &config.sticky_cookie) {
            (Some(id), Some(cookie)) => Some(AddHeader {
                name: "set-cookie",
                value: AddValue::SetCookie { cookie, id },
            }),
            _ => None,
        };
        let response_header = config.response_header.as_deref().map(|name| AddHeader {
            name,
            value: AddValue::Text(config.version_name(self.version)),
        });
        set_cookie.into_iter().chain(response_header)
    }
}
