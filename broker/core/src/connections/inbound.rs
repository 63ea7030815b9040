//! A source's inbound pipeline (checklist §5.2, in its order): payload mapping (with incoming
//! conditions, at most 10 signals per mapper), the source's header mapping over the transport
//! headers (mapped values overwrite the payload's), the authorization context (header
//! placeholders resolved), a correlation-id when none, enforcement, and the source's
//! acknowledgement requests. Pure: compiled once per source, run per consumed message.
//!
//! A message that fails mapping or enforcement is `Refused`: its error goes to the reply target
//! and the message is settled as permanent, never redelivered.

use super::mapping::{DittoMapper, Mapper, NormalizedMapper, MAX_MAPPED};
use super::message::ExternalMessage;
use super::model::{Connection, ConnectionType, ResponseType, Source};
use super::validate::resolve_connection_id;
use crate::auth::AuthContext;
use crate::placeholders::{Allowed, Pipeline, Resolved, SignalResolver, Template};
use crate::routing::acks::RequestKind;
use twinwire_protocol::exceptions::connectivity::{id_enforcement_failed, mapping_failed};
use twinwire_protocol::headers::names;
use twinwire_protocol::{DittoError, Envelope, Headers};

/// A payload mapper with its incoming and outgoing conditions.
pub struct ConditionalMapper {
    pub mapper: Box<dyn Mapper>,
    pub incoming: Vec<Pipeline>,
    pub outgoing: Vec<Pipeline>,
}

/// The mappers a source or target names (`Ditto` when it names none).
pub fn mappers(
    connection: &Connection,
    names: &[String],
) -> Result<Vec<ConditionalMapper>, DittoError> {
    let names: Vec<&str> = if names.is_empty() && connection.payload_mapping.is_empty() {
        vec!["Ditto"]
    } else if names.is_empty() {
        connection
            .payload_mapping
            .iter()
            .map(String::as_str)
            .collect()
    } else {
        names.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|name| {
            let definition = connection.mapping_definitions.get(name);
            let engine = definition.map_or(name, |d| d.mapping_engine.as_str());
            // A bare alias (no definition) has no options.
            let no_options = serde_json::Map::new();
            let options = definition.map_or(&no_options, |d| &d.options);
            use super::mapping::{
                ConnectionStatusMapper, ImplicitThingCreationMapper, RawMessageMapper,
                UpdateTwinWithLiveResponseMapper,
            };
            let mapper: Box<dyn Mapper> = match engine {
                "Ditto" => Box::new(DittoMapper::default()),
                "Normalized" => Box::new(NormalizedMapper::from_options(options)),
                "RawMessage" => Box::new(RawMessageMapper::from_options(options)?),
                "ImplicitThingCreation" => {
                    Box::new(ImplicitThingCreationMapper::from_options(options)?)
                }
                "UpdateTwinWithLiveResponse" => {
                    Box::new(UpdateTwinWithLiveResponseMapper::from_options(options)?)
                }
                "ConnectionStatus" => Box::new(ConnectionStatusMapper::from_options(options)?),
                other => {
                    return Err(twinwire_protocol::exceptions::connectivity::configuration_invalid(
                        &format!("The payload mapper '{other}' is not available."),
                        "Use Ditto, Normalized, RawMessage, ImplicitThingCreation, UpdateTwinWithLiveResponse or ConnectionStatus; the JavaScript mapper is not supported.",
                    ))
                }
            };
            let compile = |conditions: Option<&std::collections::BTreeMap<String, String>>, allowed: Allowed| {
                conditions
                    .into_iter()
                    .flatten()
                    .map(|(_, c)| Pipeline::compile_functions(c, &allowed))
                    .collect::<Result<Vec<_>, _>>()
            };
            Ok(ConditionalMapper {
                mapper,
                incoming: compile(definition.map(|d| &d.incoming_conditions), Allowed::conditions_inbound())?,
                outgoing: compile(definition.map(|d| &d.outgoing_conditions), Allowed::conditions_outbound())?,
            })
        })
        .collect()
}

/// A source, compiled.
pub struct InboundSource {
    connection_id: String,
    index: usize,
    mappers: Vec<ConditionalMapper>,
    header_mapping: Vec<(String, Template)>,
    authorization: Vec<Template>,
    enforcement: Option<(Template, Vec<Template>)>,
    includes: Vec<String>,
    ack_filter: Option<Pipeline>,
    reply: Option<ReplyTarget>,
    /// Poison handling (twinwire): redeliveries before a message counts as poison, and where
    /// it then goes.
    pub max_redeliveries: Option<u32>,
    pub dead_letter_target: Option<String>,
    /// The source's qos: what its reply target publishes with (see [`QOS_HEADER`]).
    qos: Option<u8>,
}

/// The header the broker asks an adapter for a qos by: the target's qos, or the source's for
/// its reply target. An adapter lets a header mapped by the user (e.g. `mqtt.qos`) win, and
/// sends no `twinwire-` header on.
pub const QOS_HEADER: &str = "twinwire-qos";

/// Where a source's responses go.
pub struct ReplyTarget {
    pub address: Template,
    pub header_mapping: Vec<(String, Template)>,
    pub expected: Vec<ResponseType>,
}

/// What became of a consumed message.
#[derive(Debug)]
pub enum Inbound {
    /// Signals to hand to the router, each with the subjects it acts as.
    Signals(Vec<(Envelope, AuthContext)>),
    /// Mapped to nothing (e.g. a Hono notification): settled as delivered.
    Dropped,
    /// Mapping or enforcement failed: this error goes to the reply target, and the message is
    /// settled as permanent.
    Refused(DittoError),
}

impl InboundSource {
    pub fn compile(
        connection: &Connection,
        index: usize,
        source: &Source,
    ) -> Result<Self, DittoError> {
        let mqtt3 = connection.connection_type == ConnectionType::Mqtt;
        let header_allowed = if mqtt3 {
            Allowed::source_header_mapping_mqtt3()
        } else {
            Allowed::source_header_mapping()
        };
        // Ditto's legacy migration: a source without a replyTarget (all types but MQTT 3.1.1)
        // maps correlation-id, content-type and reply-to from the transport, the user's own
        // entries first.
        let mut header_mapping_spec = source.header_mapping.clone();
        if source.reply_target.is_none() && !mqtt3 {
            for name in ["correlation-id", "content-type", "reply-to"] {
                header_mapping_spec
                    .entry(name.to_owned())
                    .or_insert_with(|| format!("{{{{ header:{name} }}}}"));
            }
        }
        let header_mapping = header_mapping_spec
            .iter()
            .map(|(k, v)| Ok((k.clone(), Template::compile(v, &header_allowed)?)))
            .collect::<Result<_, DittoError>>()?;
        let authorization = source
            .authorization_context
            .iter()
            .map(|s| Template::compile(s, &Allowed::source_authorization_context()))
            .collect::<Result<_, _>>()?;
        let enforcement = match &source.enforcement {
            None => None,
            Some(e) => {
                let input = match connection.connection_type {
                    ConnectionType::Mqtt => Allowed::enforcement_input_mqtt3(),
                    ConnectionType::Mqtt5 => Allowed::enforcement_input_mqtt5(),
                    _ => Allowed::enforcement_input(),
                };
                let filters = match connection.connection_type {
                    ConnectionType::Amqp091 | ConnectionType::Kafka => {
                        Allowed::enforcement_filters_with_feature()
                    }
                    _ => Allowed::enforcement_filters(),
                };
                Some((
                    Template::compile(&e.input, &input)?,
                    e.filters
                        .iter()
                        .map(|f| Template::compile(f, &filters))
                        .collect::<Result<_, _>>()?,
                ))
            }
        };
        let (includes, ack_filter) = match &source.acknowledgement_requests {
            None => (Vec::new(), None),
            Some(r) => (
                r.includes
                    .iter()
                    .map(|l| resolve_connection_id(l, &connection.id))
                    .collect(),
                r.filter
                    .as_deref()
                    .map(|f| {
                        Pipeline::compile_functions(f, &Allowed::acknowledgement_request_filter())
                    })
                    .transpose()?,
            ),
        };
        let reply = match source.reply_target.as_ref() {
            Some(r) if !r.enabled => None,
            r => {
                // Ditto's default (its legacy migration): to `reply-to`, with the correlation-id.
                let address = r
                    .and_then(|r| r.address.clone())
                    .unwrap_or_else(|| "{{ header:reply-to }}".into());
                let header_mapping = match r {
                    Some(r) => r.header_mapping.clone(),
                    None if mqtt3 => Default::default(),
                    None => [(
                        "correlation-id".to_owned(),
                        "{{ header:correlation-id }}".to_owned(),
                    )]
                    .into(),
                };
                Some(ReplyTarget {
                    address: Template::compile(&address, &Allowed::reply_target())?,
                    header_mapping: header_mapping
                        .iter()
                        .map(|(k, v)| {
                            Ok((k.clone(), Template::compile(v, &Allowed::reply_target())?))
                        })
                        .collect::<Result<_, DittoError>>()?,
                    expected: r
                        .and_then(|r| r.expected_response_types.clone())
                        .unwrap_or_else(|| vec![ResponseType::Response, ResponseType::Error]),
                })
            }
        };
        Ok(InboundSource {
            connection_id: connection.id.clone(),
            index,
            mappers: mappers(connection, &source.payload_mapping)?,
            header_mapping,
            authorization,
            enforcement,
            includes,
            ack_filter,
            reply,
            max_redeliveries: source.max_redeliveries,
            dead_letter_target: source.dead_letter_target.clone(),
            qos: source.qos,
        })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The message to publish on the reply target for a response, error or aggregated acks
    /// the router answered; `None` when the reply target is off, does not expect that kind of
    /// answer, or its address does not resolve (the answer is dropped, as Ditto drops it).
    pub fn reply(&self, answer: &Envelope) -> Option<ExternalMessage> {
        let reply = self.reply.as_ref()?;
        let failed = answer.status.is_some_and(|s| s >= 400);
        let kind = match answer.topic.criterion {
            twinwire_protocol::Criterion::Errors => ResponseType::Error,
            twinwire_protocol::Criterion::Acks(_) if failed => ResponseType::Nack,
            _ if failed => ResponseType::Error,
            _ => ResponseType::Response,
        };
        if !reply.expected.contains(&kind) {
            return None;
        }
        let resolver = SignalResolver::for_signal(answer).connection_id(&self.connection_id);
        let address = reply.address.resolve(&resolver).into_first()?;
        let mapper = self
            .mappers
            .iter()
            .find(|m| m.mapper.alias() == "Ditto")
            .map(|m| &*m.mapper);
        let fallback = DittoMapper::default();
        let mut message = mapper
            .unwrap_or(&fallback)
            .outbound(answer)
            .ok()?
            .into_iter()
            .next()?;
        for (name, template) in &reply.header_mapping {
            if let Some(value) = template.resolve(&resolver).into_first() {
                message.set_header(name.as_str(), value);
            }
        }
        if let Some(qos) = self.qos {
            message.set_header(QOS_HEADER, qos.to_string());
        }
        message.address = address;
        Some(message)
    }

    /// Runs a consumed message through the pipeline.
    pub fn inbound(&self, message: &ExternalMessage) -> Inbound {
        let external = external_headers(message);
        let resolver = SignalResolver::for_external(&external)
            .connection_id(&self.connection_id)
            .source_address(&message.address);
        // The subjects first: mappers may name the first as `{{ request:subjectId }}`.
        let auth = match self.authorization_context(&external) {
            Ok(auth) => auth,
            Err(error) => return Inbound::Refused(error),
        };
        let mut signals = Vec::new();
        for mapper in &self.mappers {
            let applies = mapper
                .incoming
                .iter()
                .all(|c| c.resolve_with_input(&resolver, "true").is_resolved());
            if !applies {
                continue;
            }
            match mapper.mapper.inbound_as(message, auth.first()) {
                Ok(mapped) if mapped.len() > MAX_MAPPED => {
                    return Inbound::Refused(mapping_failed(
                        message.content_type(),
                        &format!("The mapper {} made {} signals of one message, at most {MAX_MAPPED} are allowed.", mapper.mapper.alias(), mapped.len()),
                    ))
                }
                Ok(mapped) => signals.extend(mapped),
                Err(error) => return Inbound::Refused(error),
            }
        }
        if signals.is_empty() {
            return Inbound::Dropped;
        }
        let mut out = Vec::with_capacity(signals.len());
        for mut signal in signals {
            self.map_headers(&mut signal, &external, &message.address);
            if signal.headers.correlation_id().is_none() {
                signal
                    .headers
                    .insert(names::CORRELATION_ID, uuid::Uuid::new_v4().to_string());
            }
            if let Err(error) = self.enforce(&signal, &external, &message.address) {
                return Inbound::Refused(error);
            }
            self.request_acks(&mut signal, &external);
            out.push((signal, auth.clone()));
        }
        Inbound::Signals(out)
    }

    fn authorization_context(&self, external: &Headers) -> Result<AuthContext, DittoError> {
        let resolver = SignalResolver::for_external(external).connection_id(&self.connection_id);
        let mut subjects = Vec::new();
        for template in &self.authorization {
            subjects.extend(template.resolve_strict(&resolver)?);
        }
        AuthContext::new(subjects).map_err(|e| {
            twinwire_protocol::exceptions::connectivity::configuration_invalid(
                &e.to_string(),
                "The authorization context must resolve to issuer:subject.",
            )
        })
    }

    /// The source's header mapping: each value resolved over the transport headers and the
    /// mapped signal; one that does not resolve (or is deleted) is skipped.
    fn map_headers(&self, signal: &mut Envelope, external: &Headers, address: &str) {
        if self.header_mapping.is_empty() {
            return;
        }
        let mut mapped = Vec::with_capacity(self.header_mapping.len());
        {
            let resolver = SignalResolver::for_external(external)
                .envelope(signal)
                .connection_id(&self.connection_id)
                .source_address(address);
            for (name, template) in &self.header_mapping {
                if let Resolved::Values(values) = template.resolve(&resolver) {
                    if let Some(value) = values.into_iter().next() {
                        mapped.push((name.clone(), value));
                    }
                }
            }
        }
        for (name, value) in mapped {
            // Internal headers are never taken from outside.
            if !name.to_ascii_lowercase().starts_with("ditto-") {
                signal.headers.insert(name, value);
            }
        }
    }

    fn enforce(
        &self,
        signal: &Envelope,
        external: &Headers,
        address: &str,
    ) -> Result<(), DittoError> {
        let Some((input, filters)) = &self.enforcement else {
            return Ok(());
        };
        let resolver = SignalResolver::for_external(external)
            .envelope(signal)
            .connection_id(&self.connection_id)
            .source_address(address);
        let input = match input.resolve(&resolver) {
            Resolved::Values(values) => values.into_iter().next().unwrap_or_default(),
            _ => return Err(id_enforcement_failed("")),
        };
        let matched = filters.iter().any(|filter| {
            matches!(filter.resolve(&resolver), Resolved::Values(values) if values.contains(&input))
        });
        if matched {
            Ok(())
        } else {
            Err(id_enforcement_failed(&input))
        }
    }

    /// The source's `acknowledgementRequests`: `includes` added to the signals that can request
    /// acks (unless they asked for none explicitly), then the filter.
    fn request_acks(&self, signal: &mut Envelope, external: &Headers) {
        let kind = RequestKind::of(signal);
        if kind == RequestKind::Other {
            return;
        }
        let explicit = signal.headers.requested_acks().ok().flatten();
        if explicit.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        let mut labels: Vec<String> = match &explicit {
            Some(labels) => labels.iter().map(|l| l.as_str().to_owned()).collect(),
            // The default a source's signal gets, now made explicit so includes add to it.
            None if !self.includes.is_empty() => kind
                .built_in_label()
                .map(str::to_owned)
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        for include in &self.includes {
            if !labels.contains(include) {
                labels.push(include.clone());
            }
        }
        if !labels.is_empty() {
            signal.headers.insert(names::REQUESTED_ACKS, labels.clone());
        }
        if let Some(filter) = &self.ack_filter {
            let resolver =
                SignalResolver::for_external(external).connection_id(&self.connection_id);
            let current = serde_json::Value::from(labels).to_string();
            match filter.resolve_with_input(&resolver, &current) {
                Resolved::Values(values) => {
                    if let Some(value) = values.into_iter().next() {
                        signal.headers.insert(names::REQUESTED_ACKS, value);
                    }
                }
                // Removed: QoS 0.
                Resolved::Deleted | Resolved::Unresolved => {
                    signal
                        .headers
                        .insert(names::REQUESTED_ACKS, serde_json::Value::Array(Vec::new()));
                }
            }
        }
    }
}

/// The transport headers as Ditto headers (case-insensitive), for placeholders.
pub fn external_headers(message: &ExternalMessage) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in &message.headers {
        headers.insert(name.as_str(), value.as_str());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(extra: serde_json::Value) -> (Connection, InboundSource) {
        let mut source = json!({"addresses": ["q"], "authorizationContext": ["integration:{{ header:tenant }}"]});
        if let (Some(s), Some(e)) = (source.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        let connection: Connection = serde_json::from_value(json!({
            "id": "c1", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
            "sources": [source]
        }))
        .unwrap();
        let compiled = InboundSource::compile(&connection, 0, &connection.sources[0]).unwrap();
        (connection, compiled)
    }

    fn message(
        thing: &str,
        headers: &[(&str, &str)],
        extra_headers: serde_json::Value,
    ) -> ExternalMessage {
        let payload = json!({"topic": format!("org.eclipse.ditto/{thing}/things/twin/commands/modify"),
                             "headers": extra_headers, "path": "/attributes/a", "value": 1});
        let mut m = ExternalMessage::new("q", payload.to_string().into_bytes());
        for (k, v) in headers {
            m.set_header(*k, *v);
        }
        m
    }

    fn signals(outcome: Inbound) -> Vec<(Envelope, AuthContext)> {
        match outcome {
            Inbound::Signals(s) => s,
            other => panic!("expected signals, got {other:?}"),
        }
    }

    #[test]
    fn mapping_headers_and_authorization() {
        let (_, s) = source(
            json!({"headerMapping": {"correlation-id": "{{ header:message-id }}", "device": "{{ header:device_id | fn:upper() }}", "ditto-origin": "forged"}}),
        );
        let got = signals(s.inbound(&message(
            "t1",
            &[
                ("tenant", "acme"),
                ("message-id", "m-1"),
                ("device_id", "d1"),
            ],
            json!({"correlation-id": "from-payload"}),
        )));
        let (signal, auth) = &got[0];
        assert_eq!(auth.subjects(), ["integration:acme"]);
        // Mapped values overwrite the payload's headers; ditto-* are never taken from outside.
        assert_eq!(signal.headers.correlation_id(), Some("m-1"));
        assert_eq!(signal.headers.get_str("device").as_deref(), Some("D1"));
        assert!(!signal.headers.contains("ditto-origin"));
        // An authorization context that does not resolve refuses the message.
        assert!(
            matches!(s.inbound(&message("t1", &[], json!({}))), Inbound::Refused(e) if e.code() == "placeholder:unresolved")
        );
        // Without a correlation-id, one is made.
        let (_, s) = source(json!({}));
        let got = signals(s.inbound(&message("t1", &[("tenant", "x")], json!({}))));
        assert!(got[0].0.headers.correlation_id().is_some());
    }

    #[test]
    fn enforcement() {
        let (_, s) = source(
            json!({"enforcement": {"input": "{{ header:device_id }}", "filters": ["{{ thing:id }}", "{{ thing:name }}"]}}),
        );
        assert!(matches!(
            s.inbound(&message(
                "dev-1",
                &[("tenant", "x"), ("device_id", "dev-1")],
                json!({})
            )),
            Inbound::Signals(_)
        ));
        assert!(matches!(
            s.inbound(&message(
                "dev-1",
                &[("tenant", "x"), ("device_id", "org.eclipse.ditto:dev-1")],
                json!({})
            )),
            Inbound::Signals(_)
        ));
        match s.inbound(&message(
            "dev-2",
            &[("tenant", "x"), ("device_id", "dev-1")],
            json!({}),
        )) {
            Inbound::Refused(e) => assert_eq!(
                (e.status, e.code()),
                (400, "connectivity:connection.id.enforcement.failed")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn acknowledgement_requests() {
        let (_, s) =
            source(json!({"acknowledgementRequests": {"includes": ["{{connection:id}}:custom"]}}));
        let acks = |headers: serde_json::Value| {
            let got = signals(s.inbound(&message("t", &[("tenant", "x")], headers)));
            got[0].0.headers.requested_acks().unwrap()
        };
        let labels = |l: Option<Vec<twinwire_protocol::AckLabel>>| {
            l.map(|l| l.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            labels(acks(json!({}))),
            Some(vec!["twin-persisted".to_owned(), "c1:custom".to_owned()])
        );
        assert_eq!(
            labels(acks(json!({"requested-acks": ["a1:x"]}))),
            Some(vec!["a1:x".to_owned(), "c1:custom".to_owned()])
        );
        assert_eq!(labels(acks(json!({"requested-acks": []}))), Some(vec![]));
        let (_, s) =
            source(json!({"acknowledgementRequests": {"includes": [], "filter": "fn:delete()"}}));
        let got = signals(s.inbound(&message("t", &[("tenant", "x")], json!({}))));
        assert_eq!(got[0].0.headers.requested_acks().unwrap(), Some(vec![]));
    }

    #[test]
    fn failures_are_refused_and_replies_follow_the_expected_types() {
        let (_, s) = source(
            json!({"replyTarget": {"address": "replies/{{ header:correlation-id }}", "expectedResponseTypes": ["error"], "headerMapping": {"x-status": "{{ header:correlation-id }}"}}}),
        );
        let mut bad = ExternalMessage::new("q", b"{not json".to_vec());
        bad.set_header("tenant", "x");
        let Inbound::Refused(error) = s.inbound(&bad) else {
            panic!("refused")
        };
        assert_eq!(error.code(), "connectivity:message.mapping.failed");
        let command = Envelope::from_json(json!({"topic": "org.eclipse.ditto/t/things/twin/commands/modify", "headers": {"correlation-id": "c-9"}, "path": "/attributes/a", "value": 1})).unwrap();
        let error_reply = s
            .reply(&command.error_response(&error))
            .expect("errors are expected");
        assert_eq!(error_reply.address, "replies/c-9");
        assert_eq!(error_reply.header("x-status"), Some("c-9"));
        assert!(
            s.reply(&command.response(204, None)).is_none(),
            "responses are not expected"
        );
    }
}
