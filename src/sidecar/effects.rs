//! What the filter writes for an outbound call's [`Restore`]: the tag header, `baggage` and
//! `tracestate` on the request, `response_header` on the response.

use super::Restore;
use crate::baggage;
use crate::config::CompiledConfig;
use crate::effects::{
    baggage_effect, tracestate_effect, AddHeader, AddValue, SetHeader, SetMode, SetValue,
};
use crate::request::RequestView;
use crate::trace_context;

impl Restore {
    /// The request headers the filter sets on the outbound call: the tag header (replacing
    /// whatever the app sent; nothing to write when it already is exactly the version), then
    /// `baggage` and `tracestate` when configured, as in gateway mode.
    pub fn request_effects<'a, R: RequestView>(
        &'a self,
        config: &'a CompiledConfig,
        request: &'a R,
    ) -> impl Iterator<Item = SetHeader<'a>> + 'a {
        let version = config.version_name(self.version);
        let mut tags = request.header_values(&config.tag_header);
        let tag_mode = match (tags.next(), tags.next()) {
            (None, _) => SetMode::Add,
            (Some(value), None) if value == version.as_bytes() => SetMode::Unchanged,
            _ => SetMode::Replace,
        };
        let tag = SetHeader {
            name: &config.tag_header,
            value: SetValue::Text(version),
            mode: tag_mode,
        };
        let baggage = config
            .baggage
            .then(|| baggage_effect(request, version, config.tag_header == baggage::HEADER));
        let tracestate = tracestate_effect(
            config,
            request,
            version,
            config.tag_header == trace_context::TRACESTATE,
        );
        std::iter::once(tag).chain(baggage).chain(tracestate)
    }

    /// `response_header` with the restored version, on the response the app receives.
    pub fn response_effects<'a>(
        &'a self,
        config: &'a CompiledConfig,
    ) -> impl Iterator<Item = AddHeader<'a>> + 'a {
        config
            .response_header
            .as_deref()
            .map(|name| AddHeader {
                name,
                value: AddValue::Text(config.version_name(self.version)),
            })
            .into_iter()
    }
}
