//! The `Ditto` mapper: the payload is Ditto Protocol JSON. Inbound, an empty payload is a
//! mapping error, and Hono's notification content types map to nothing (Ditto's default
//! `content-type-blocklist`). Outbound, the signal's JSON with only `content-type:
//! application/vnd.eclipse.ditto+json` and the correlation-id as headers: every other header
//! comes from the target's header mapping.

use super::{ExternalMessage, Mapper};
use twinwire_protocol::exceptions::connectivity::mapping_failed;
use twinwire_protocol::{DittoError, Envelope};

pub const DITTO_CONTENT_TYPE: &str = "application/vnd.eclipse.ditto+json";

/// Content types the mapper skips (Hono's device notifications).
const BLOCKLIST: [&str; 4] = [
    "application/vnd.eclipse-hono-empty-notification",
    "application/vnd.eclipse-hono-device-provisioning-notification",
    "application/vnd.eclipse-hono-dc-notification+json",
    "application/vnd.eclipse-hono-delivery-failure-notification+json",
];

#[derive(Debug, Clone, Default)]
pub struct DittoMapper {
    /// The largest payload accepted.
    pub max_bytes: Option<usize>,
}

impl Mapper for DittoMapper {
    fn alias(&self) -> &str {
        "Ditto"
    }

    fn inbound(&self, message: &ExternalMessage) -> Result<Vec<Envelope>, DittoError> {
        let content_type = message.content_type();
        if content_type.is_some_and(|c| BLOCKLIST.iter().any(|b| c.starts_with(b))) {
            return Ok(Vec::new());
        }
        if message.payload.iter().all(u8::is_ascii_whitespace) {
            return Err(mapping_failed(content_type, "The payload is empty."));
        }
        let envelope = match self.max_bytes {
            Some(max) => Envelope::from_slice_limited(&message.payload, max),
            None => Envelope::from_slice(&message.payload),
        }
        .and_then(|envelope| envelope.signal().map(|_| envelope))
        .map_err(|e| {
            let error = DittoError::from(e);
            mapping_failed(content_type, error.message.as_deref().unwrap_or(""))
        })?;
        Ok(vec![envelope])
    }

    fn outbound(&self, signal: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        let mut message = ExternalMessage::new(String::new(), signal.to_json_string().into_bytes())
            .with_header("content-type", DITTO_CONTENT_TYPE);
        if let Some(id) = signal.headers.correlation_id() {
            message.set_header("correlation-id", id);
        }
        Ok(vec![message])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        let json = r#"{"topic":"org.eclipse.ditto/t/things/twin/commands/modify","headers":{"correlation-id":"c-1","x":"y"},"path":"/attributes/a","value":1}"#;
        let mapper = DittoMapper::default();
        let signals = mapper
            .inbound(&ExternalMessage::new("in", json.as_bytes().to_vec()))
            .unwrap();
        assert_eq!(signals.len(), 1);
        let out = mapper.outbound(&signals[0]).unwrap();
        assert_eq!(
            out[0].headers,
            [
                ("content-type".to_owned(), DITTO_CONTENT_TYPE.to_owned()),
                ("correlation-id".to_owned(), "c-1".to_owned()),
            ]
        );
        let back: serde_json::Value = serde_json::from_slice(&out[0].payload).unwrap();
        assert_eq!(back["headers"]["x"], "y");
    }

    #[test]
    fn refusals_and_skips() {
        let mapper = DittoMapper::default();
        for bad in [
            "",
            "  ",
            "{nope",
            "[]",
            r#"{"topic":"x/y/things/twin/commands/nothing","path":"/"}"#,
        ] {
            let error = mapper
                .inbound(&ExternalMessage::new("in", bad.as_bytes().to_vec()))
                .unwrap_err();
            assert_eq!(
                (error.status, error.code()),
                (400, "connectivity:message.mapping.failed"),
                "{bad}"
            );
        }
        let hono = ExternalMessage::new("in", b"".to_vec()).with_header(
            "content-type",
            "application/vnd.eclipse-hono-empty-notification",
        );
        assert!(mapper.inbound(&hono).unwrap().is_empty());
    }
}
