//! The rules a connection must keep, as Ditto checks them when a connection is created
//! (../shared/ditto-reference/CONNECTIVITY-CHECKLIST.md §1, §2, §6.8), each problem naming the
//! field and what to do; and warnings where a route cannot be acknowledged end to end.

use super::model::{Connection, ConnectionType, Source, Target};
use crate::routing::pubsub::{parse_filter, Kind};
use std::collections::HashSet;
use std::fmt;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The connection works, but not as one would expect.
    Warning,
    /// The connection cannot be used.
    Error,
}

/// One problem of a connection file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    /// Ditto's error code for it (`connectivity:connection.configuration.invalid`, …).
    pub code: &'static str,
    /// The field, as `sources[0].authorizationContext[1]`; empty for the file.
    pub field: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

const INVALID: &str = "connectivity:connection.configuration.invalid";

impl Problem {
    pub fn error(
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Error,
            code: INVALID,
            field: field.into(),
            line: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn warning(
        field: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(field, message, hint)
        }
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.field.is_empty() {
            write!(f, "{severity}: {} ({})", self.message, self.hint)
        } else {
            write!(
                f,
                "{severity}: {}: {} ({})",
                self.field, self.message, self.hint
            )
        }
    }
}

/// At most this many sources and targets, as Ditto.
pub const MAX_SOURCES: usize = 4;
pub const MAX_TARGETS: usize = 4;
/// At most this many payload mappers per source or target.
pub const MAX_MAPPERS: usize = 10;

/// The built-in payload mappers (docs/connectivity-mapping.md) that need no definition.
pub const BUILT_IN_MAPPERS: [&str; 6] = [
    "Ditto",
    "Normalized",
    "RawMessage",
    "ImplicitThingCreation",
    "UpdateTwinWithLiveResponse",
    "ConnectionStatus",
];

/// Every problem of a connection.
pub fn validate(c: &Connection) -> Vec<Problem> {
    let mut out = Vec::new();
    top_level(c, &mut out);
    placeholders(c, &mut out);
    for (i, source) in c.sources.iter().enumerate() {
        validate_source(c, i, source, &mut out);
    }
    let mut issued = HashSet::new();
    for (i, target) in c.targets.iter().enumerate() {
        validate_target(c, i, target, &mut issued, &mut out);
    }
    // The mappers with their options, as a source or target will build them.
    for (i, s) in c.sources.iter().enumerate() {
        if let Err(e) = super::inbound::mappers(c, &s.payload_mapping) {
            if e.code() == "connectivity:message.mapper.config.invalid" {
                out.push(mapper_problem(format!("sources[{i}].payloadMapping"), &e));
            }
        }
    }
    for (i, t) in c.targets.iter().enumerate() {
        if let Err(e) = super::inbound::mappers(c, &t.payload_mapping) {
            if e.code() == "connectivity:message.mapper.config.invalid" {
                out.push(mapper_problem(format!("targets[{i}].payloadMapping"), &e));
            }
        }
    }
    for (id, definition) in &c.mapping_definitions {
        let field = format!("mappingDefinitions.{id}.mappingEngine");
        let engine = definition.mapping_engine.as_str();
        if engine == "JavaScript" {
            out.push(Problem::error(
                field,
                "the JavaScript mapper is not supported",
                "Use a built-in mapper or an adapter plugin that maps.",
            ));
        } else if !BUILT_IN_MAPPERS.contains(&engine) {
            out.push(Problem::error(
                field,
                format!("unknown mapping engine '{engine}'"),
                format!("Use one of {}.", BUILT_IN_MAPPERS.join(", ")),
            ));
        }
    }
    out
}

/// Every template of the connection compiles with the placeholders its location allows
/// (checklist §3.5), so a mistake shows when the file loads, not on the first message.
fn placeholders(c: &Connection, out: &mut Vec<Problem>) {
    use crate::placeholders::{Allowed, Pipeline};
    let mqtt3 = c.connection_type == ConnectionType::Mqtt;
    for (i, s) in c.sources.iter().enumerate() {
        if !mqtt3 {
            for (j, subject) in s.authorization_context.iter().enumerate() {
                if subject.contains("{{") {
                    template(
                        out,
                        format!("sources[{i}].authorizationContext[{j}]"),
                        subject,
                        &Allowed::source_authorization_context(),
                    );
                }
            }
        }
        if let Some(e) = &s.enforcement {
            let input = match c.connection_type {
                ConnectionType::Mqtt => Allowed::enforcement_input_mqtt3(),
                ConnectionType::Mqtt5 => Allowed::enforcement_input_mqtt5(),
                _ => Allowed::enforcement_input(),
            };
            template(
                out,
                format!("sources[{i}].enforcement.input"),
                &e.input,
                &input,
            );
            let filters = match c.connection_type {
                ConnectionType::Amqp091 | ConnectionType::Kafka => {
                    Allowed::enforcement_filters_with_feature()
                }
                _ => Allowed::enforcement_filters(),
            };
            for (j, f) in e.filters.iter().enumerate() {
                template(
                    out,
                    format!("sources[{i}].enforcement.filters[{j}]"),
                    f,
                    &filters,
                );
            }
        }
        let mapping = if mqtt3 {
            Allowed::source_header_mapping_mqtt3()
        } else {
            Allowed::source_header_mapping()
        };
        for (name, value) in &s.header_mapping {
            template(
                out,
                format!("sources[{i}].headerMapping.{name}"),
                value,
                &mapping,
            );
        }
        if let Some(reply) = &s.reply_target {
            if let Some(address) = &reply.address {
                template(
                    out,
                    format!("sources[{i}].replyTarget.address"),
                    address,
                    &Allowed::reply_target(),
                );
            }
            for (name, value) in &reply.header_mapping {
                template(
                    out,
                    format!("sources[{i}].replyTarget.headerMapping.{name}"),
                    value,
                    &Allowed::reply_target(),
                );
            }
        }
        if let Some(filter) = s
            .acknowledgement_requests
            .as_ref()
            .and_then(|r| r.filter.as_deref())
        {
            if let Err(e) =
                Pipeline::compile_functions(filter, &Allowed::acknowledgement_request_filter())
            {
                out.push(placeholder_problem(
                    format!("sources[{i}].acknowledgementRequests.filter"),
                    &e,
                ));
            }
        }
    }
    for (i, t) in c.targets.iter().enumerate() {
        template(
            out,
            format!("targets[{i}].address"),
            &t.address,
            &Allowed::target_address(),
        );
        for (name, value) in &t.header_mapping {
            template(
                out,
                format!("targets[{i}].headerMapping.{name}"),
                value,
                &Allowed::target_header_mapping(),
            );
        }
    }
    for (id, definition) in &c.mapping_definitions {
        for (conditions, allowed, name) in [
            (
                &definition.incoming_conditions,
                Allowed::conditions_inbound(),
                "incomingConditions",
            ),
            (
                &definition.outgoing_conditions,
                Allowed::conditions_outbound(),
                "outgoingConditions",
            ),
        ] {
            for (key, condition) in conditions {
                if let Err(e) = Pipeline::compile_functions(condition, &allowed) {
                    out.push(placeholder_problem(
                        format!("mappingDefinitions.{id}.{name}.{key}"),
                        &e,
                    ));
                }
            }
        }
    }
}

fn mapper_problem(field: String, error: &twinwire_protocol::DittoError) -> Problem {
    let mut problem = Problem::error(
        field,
        error.message.clone().unwrap_or_default(),
        error
            .description
            .clone()
            .unwrap_or_else(|| "See docs/connectivity-mapping.md for the mapper's options.".into()),
    );
    problem.code = "connectivity:message.mapper.config.invalid";
    problem
}

/// Warnings that need the adapter at hand: `settles` is whether the adapter serving the
/// connection's type settles consumed messages (`None`: no adapter serves the type).
pub fn adapter_warnings(c: &Connection, settles: Option<bool>) -> Vec<Problem> {
    let mut out = Vec::new();
    match settles {
        None => out.push(Problem::warning(
            "connectionType",
            format!("no adapter in the plugin directory serves '{}'", c.connection_type),
            "Put the adapter plugin for it into the plugin directory; the connection cannot open without one.",
        )),
        Some(false) => {
            for (i, _) in c.sources.iter().enumerate() {
                out.push(Problem::warning(
                    format!("sources[{i}]"),
                    format!("the adapter for '{}' cannot settle: its broker takes every message as delivered on receipt, so a failed command or acknowledgement loses it", c.connection_type),
                    "Use an adapter that settles for at-least-once sources.",
                ));
            }
        }
        Some(true) => {}
    }
    out
}

/// A template must compile with what its location allows.
fn template(
    out: &mut Vec<Problem>,
    field: String,
    text: &str,
    allowed: &crate::placeholders::Allowed,
) {
    if let Err(e) = crate::placeholders::Template::compile(text, allowed) {
        out.push(placeholder_problem(field, &e));
    }
}

fn placeholder_problem(field: String, error: &twinwire_protocol::DittoError) -> Problem {
    let message = error.message.clone().unwrap_or_default();
    let hint = error
        .description
        .clone()
        .unwrap_or_else(|| "See docs/basic-placeholders.md for what each location allows.".into());
    let mut problem = Problem::error(field, message, hint);
    problem.code = match error.code() {
        "placeholder:unresolved" => "placeholder:unresolved",
        "placeholder:function.unknown" => "placeholder:function.unknown",
        "placeholder:function.signature.invalid" => "placeholder:function.signature.invalid",
        "placeholder:function.too.complex" => "placeholder:function.too.complex",
        _ => "placeholder:placeholder.notresolvable",
    };
    problem
}

fn top_level(c: &Connection, out: &mut Vec<Problem>) {
    let id_ok = !c.id.is_empty()
        && c.id.len() <= 100
        && c.id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | ':'));
    if !id_ok {
        out.push(
            Problem::error(
                "id",
                format!("'{}' is not a valid connection ID", c.id),
                "Use 1 to 100 of letters, digits, '-', '_' and ':'.",
            )
            .code("connectivity:connection.id.invalid"),
        );
    }
    if let ConnectionType::Other(name) = &c.connection_type {
        out.push(Problem::warning(
            "connectionType",
            format!("'{name}' is served only by an adapter plugin that declares it"),
            "Make sure such a plugin is in the plugin directory (twinwire run --plugins DIR).",
        ));
    }
    if matches!(
        c.connection_type,
        ConnectionType::Amqp10 | ConnectionType::Hono | ConnectionType::HttpPush
    ) {
        out.push(Problem::error(
            "connectionType",
            format!("twinwire has no adapter for '{}'", c.connection_type),
            "Use amqp-091, kafka, mqtt or mqtt-5, or an adapter plugin.",
        ));
    }
    uri(c, out);
    if c.sources.is_empty() && c.targets.is_empty() {
        out.push(Problem::error(
            "",
            "Either a source or a target must be specified in the configuration of a connection!",
            "Add a source or a target.",
        ));
    }
    if c.sources.len() > MAX_SOURCES {
        out.push(Problem::error(
            "sources",
            format!("{} sources, at most {MAX_SOURCES} allowed", c.sources.len()),
            "Split the connection.",
        ));
    }
    if c.targets.len() > MAX_TARGETS {
        out.push(Problem::error(
            "targets",
            format!("{} targets, at most {MAX_TARGETS} allowed", c.targets.len()),
            "Split the connection.",
        ));
    }
    if !(1..=9).contains(&c.client_count) {
        out.push(Problem::error(
            "clientCount",
            format!("{} clients", c.client_count),
            "Use 1 to 9.",
        ));
    } else if c.client_count > 1 && c.connection_type.is_mqtt() {
        out.push(Problem::error(
            "clientCount",
            "MQTT connections have one client",
            "Set clientCount to 1.",
        ));
    }
    if c.processor_pool_size == 0 {
        out.push(Problem::error(
            "processorPoolSize",
            "no mapping processor",
            "Use 1 or more.",
        ));
    }
    if c.ssh_tunnel
        .as_ref()
        .and_then(|t| t.get("enabled"))
        .and_then(|e| e.as_bool())
        == Some(true)
    {
        out.push(Problem::error(
            "sshTunnel",
            "SSH tunnels are not supported",
            "Reach the broker directly, or tunnel outside twinwire.",
        ));
    }
    if c.mapping_context.is_some() {
        out.push(Problem::error(
            "mappingContext",
            "the legacy JavaScript mapping context is not supported",
            "Use mappingDefinitions with a built-in mapper.",
        ));
    }
    if let Some(credentials) = &c.credentials {
        use super::model::Credentials;
        if !matches!(
            credentials,
            Credentials::Plain { .. } | Credentials::ClientCert { .. }
        ) {
            out.push(Problem::error(
                "credentials.type",
                "only plain and client-cert credentials are supported",
                "Use plain (username, password) or client-cert (cert, key).",
            ));
        }
    }
}

fn uri(c: &Connection, out: &mut Vec<Problem>) {
    let invalid = |message: String, hint: &str| {
        Problem::error("uri", message, hint).code("connectivity:connection.uri.invalid")
    };
    let Some((scheme, rest)) = c.uri.split_once("://") else {
        out.push(invalid(
            format!("'{}' has no scheme", redact(&c.uri)),
            "Write scheme://[user:password@]host:port.",
        ));
        return;
    };
    let (secure, allowed): (&[&str], &[&str]) = match c.connection_type {
        ConnectionType::Amqp091 => (&["amqps"], &["amqp", "amqps"]),
        ConnectionType::Kafka => (&["ssl"], &["tcp", "ssl"]),
        ConnectionType::Mqtt | ConnectionType::Mqtt5 => {
            (&["ssl", "mqtts"], &["tcp", "ssl", "mqtt", "mqtts"])
        }
        _ => (&[], &[]),
    };
    if !allowed.is_empty() && !allowed.contains(&scheme) {
        out.push(invalid(
            format!("scheme '{scheme}' is not allowed for {}", c.connection_type),
            &format!("Use {}.", allowed.join(" or ")),
        ));
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let port = host_port.rsplit_once(':').map(|(_, p)| p);
    if host_port.is_empty() || port.is_none_or(|p| p.parse::<u16>().is_err()) {
        out.push(invalid(
            format!("'{}' names no host and port", redact(&c.uri)),
            "Write scheme://[user:password@]host:port.",
        ));
    }
    if c.ca.is_some() && !secure.contains(&scheme) {
        out.push(invalid(
            "a CA is given for a URI that is not secure".into(),
            &format!("Use {} or drop ca.", secure.join(" or ")),
        ));
    }
}

/// A URI without its password, for messages.
pub fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &uri[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..s + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

fn validate_source(c: &Connection, i: usize, s: &Source, out: &mut Vec<Problem>) {
    let field = |name: &str| format!("sources[{i}].{name}");
    if s.addresses.is_empty() {
        out.push(Problem::error(
            field("addresses"),
            "no address",
            "Name at least one queue, topic or topic filter.",
        ));
    }
    let mut seen = HashSet::new();
    for (j, address) in s.addresses.iter().enumerate() {
        if address.trim().is_empty() {
            out.push(Problem::error(
                format!("sources[{i}].addresses[{j}]"),
                "an empty address",
                "Remove it or name the address.",
            ));
        } else if !seen.insert(address) {
            out.push(Problem::error(
                format!("sources[{i}].addresses[{j}]"),
                format!("'{address}' is listed twice"),
                "List each address once.",
            ));
        }
    }
    authorization_context(
        &field("authorizationContext"),
        &s.authorization_context,
        c.connection_type != ConnectionType::Mqtt,
        out,
    );
    if s.consumer_count == 0 {
        out.push(Problem::error(
            field("consumerCount"),
            "no consumer",
            "Use 1 or more.",
        ));
    } else if s.consumer_count > 1 && c.connection_type == ConnectionType::Mqtt {
        out.push(Problem::error(
            field("consumerCount"),
            "MQTT 3.1.1 sources have one consumer",
            "Set consumerCount to 1.",
        ));
    }
    match (&c.connection_type, s.qos) {
        (t, None) if t.is_mqtt() => out.push(Problem::error(
            field("qos"),
            "MQTT sources need a qos",
            "Set qos to 0, 1 or 2; 1 or 2 for at least once.",
        )),
        (t, Some(q)) if t.is_mqtt() && q > 2 => out.push(Problem::error(
            field("qos"),
            format!("qos {q}"),
            "Use 0, 1 or 2.",
        )),
        (ConnectionType::Kafka, Some(q)) if q > 1 => out.push(Problem::error(
            field("qos"),
            format!("qos {q}"),
            "Kafka sources take 0 or 1.",
        )),
        _ => {}
    }
    if let Some(enforcement) = &s.enforcement {
        if enforcement.input.trim().is_empty() {
            out.push(Problem::error(
                field("enforcement.input"),
                "no input",
                "Name the header (or source:address) to enforce, e.g. {{ header:device_id }}.",
            ));
        }
        if enforcement.filters.is_empty() {
            out.push(Problem::error(
                field("enforcement.filters"),
                "no filter",
                "Add a filter such as {{ thing:id }}.",
            ));
        }
    }
    if let Some(requests) = &s.acknowledgement_requests {
        for (j, label) in requests.includes.iter().enumerate() {
            ack_label(
                c,
                &format!("sources[{i}].acknowledgementRequests.includes[{j}]"),
                label,
                true,
                out,
            );
        }
    }
    for (j, label) in s.declared_acks.iter().enumerate() {
        ack_label(
            c,
            &format!("sources[{i}].declaredAcks[{j}]"),
            label,
            false,
            out,
        );
    }
    mappers(c, &field("payloadMapping"), &s.payload_mapping, out);
    if let Some(reply) = &s.reply_target {
        if reply.enabled
            && reply
                .address
                .as_deref()
                .is_some_and(|a| a.trim().is_empty())
        {
            out.push(Problem::error(
                field("replyTarget.address"),
                "an empty reply address",
                "Name it, e.g. {{ header:reply-to }}, or set enabled: false.",
            ));
        }
    }
    if s.dead_letter_target
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        out.push(Problem::error(
            field("deadLetterTarget"),
            "an empty address",
            "Name where poison messages go, or remove the field.",
        ));
    }
    // Routes that cannot be acknowledged end to end.
    let at_most_once = match (&c.connection_type, s.qos) {
        (t, Some(0)) if t.is_mqtt() => true,
        (ConnectionType::Kafka, None | Some(0)) => true,
        _ => false,
    };
    let asks_acks = s
        .acknowledgement_requests
        .as_ref()
        .is_some_and(|r| !r.includes.is_empty() && r.filter.as_deref() != Some("fn:delete()"));
    if at_most_once && asks_acks {
        out.push(Problem::warning(
            field("qos"),
            "acknowledgements are requested, but with qos 0 the broker never redelivers: a failed acknowledgement loses the message",
            "Use qos 1 for at least once.",
        ));
    }
    let deleted = s
        .acknowledgement_requests
        .as_ref()
        .and_then(|r| r.filter.as_deref())
        .is_some_and(|f| f.contains("fn:delete()"));
    if deleted && !at_most_once {
        out.push(Problem::warning(
            field("acknowledgementRequests.filter"),
            "fn:delete() removes every acknowledgement request: messages are settled at once, before they are persisted",
            "Remove the filter for at least once.",
        ));
    }
}

fn validate_target(
    c: &Connection,
    i: usize,
    t: &Target,
    issued: &mut HashSet<String>,
    out: &mut Vec<Problem>,
) {
    let field = |name: &str| format!("targets[{i}].{name}");
    if t.address.trim().is_empty() {
        out.push(Problem::error(
            field("address"),
            "an empty address",
            "Name the address to publish to.",
        ));
    }
    if t.topics.is_empty() {
        out.push(Problem::error(
            field("topics"),
            "no topic",
            "Subscribe to a topic such as _/_/things/twin/events.",
        ));
    }
    for (j, topic) in t.topics.iter().enumerate() {
        let name = format!("targets[{i}].topics[{j}]");
        match parse_topic(topic) {
            Err(problem) => out.push(Problem {
                field: name,
                ..problem
            }),
            Ok(parsed) => {
                if parsed.kind == Kind::ConnectionAnnouncements && c.client_count != 1 {
                    out.push(Problem::error(
                        name,
                        "connection announcements need clientCount 1",
                        "Set clientCount to 1.",
                    ));
                }
            }
        }
    }
    authorization_context(
        &field("authorizationContext"),
        &t.authorization_context,
        false,
        out,
    );
    match (&c.connection_type, t.qos) {
        (ct, None) if ct.is_mqtt() => out.push(Problem::error(
            field("qos"),
            "MQTT targets need a qos",
            "Set qos to 0, 1 or 2.",
        )),
        (ct, Some(q)) if ct.is_mqtt() && q > 2 => out.push(Problem::error(
            field("qos"),
            format!("qos {q}"),
            "Use 0, 1 or 2.",
        )),
        _ => {}
    }
    if let Some(label) = &t.issued_acknowledgement_label {
        let name = field("issuedAcknowledgementLabel");
        if label != "live-response" {
            ack_label(c, &name, label, false, out);
        }
        if !issued.insert(resolve_connection_id(label, &c.id)) {
            out.push(
                Problem::error(
                    name,
                    format!("'{label}' is issued by another target too"),
                    "Give each target its own label.",
                )
                .code("acknowledgement:label.not.unique"),
            );
        }
    }
    mappers(c, &field("payloadMapping"), &t.payload_mapping, out);
}

/// A target topic, parsed (docs/basic-connections.md, checklist §2).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTopic {
    pub kind: Kind,
    pub namespaces: Option<Vec<String>>,
    pub filter: Option<String>,
    pub extra_fields: Option<String>,
}

/// Parses `<topic>[?namespaces=…&filter=…&extraFields=…]`; `connectivity:topic.invalid` or
/// `rql.expression.invalid` (400) when it cannot be.
pub fn parse_topic(text: &str) -> Result<TargetTopic, Problem> {
    let (base, query) = text.split_once('?').unwrap_or((text, ""));
    let kind = Kind::from_target_topic(base).ok_or_else(|| {
        Problem::error("", format!("unknown topic '{base}'"), "Use _/_/things/twin/events, _/_/things/live/events, _/_/things/live/commands, _/_/things/live/messages, _/_/policies/announcements or _/_/connections/announcements.")
            .code("connectivity:topic.invalid")
    })?;
    let mut topic = TargetTopic {
        kind,
        namespaces: None,
        filter: None,
        extra_fields: None,
    };
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (key, value) = (decode(key), decode(value));
        let allowed = match key.as_str() {
            "namespaces" => kind != Kind::ConnectionAnnouncements,
            "filter" => matches!(
                kind,
                Kind::TwinEvents | Kind::LiveEvents | Kind::LiveMessages
            ),
            "extraFields" => matches!(
                kind,
                Kind::TwinEvents | Kind::LiveEvents | Kind::LiveCommands | Kind::LiveMessages
            ),
            _ => {
                return Err(Problem::error(
                    "",
                    format!("unknown topic parameter '{key}'"),
                    "Use namespaces, filter or extraFields.",
                )
                .code("connectivity:topic.invalid"));
            }
        };
        if !allowed {
            return Err(Problem::error(
                "",
                format!("'{key}' is not allowed for {base}"),
                "See the table of allowed topic parameters in docs/basic-connections.md.",
            )
            .code("connectivity:topic.invalid"));
        }
        match key.as_str() {
            "namespaces" => {
                topic.namespaces = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "filter" => {
                parse_filter(&value).map_err(|e| {
                    Problem::error(
                        "",
                        format!(
                            "the filter does not parse: {}",
                            e.message.as_deref().unwrap_or("")
                        ),
                        "Fix the RQL; percent-encode '&' and '=' inside it.",
                    )
                    .code("rql.expression.invalid")
                })?;
                topic.filter = Some(value);
            }
            _ => topic.extra_fields = Some(value),
        }
    }
    Ok(topic)
}

fn authorization_context(
    field: &str,
    subjects: &[String],
    headers_allowed: bool,
    out: &mut Vec<Problem>,
) {
    if subjects.is_empty() {
        out.push(Problem::error(
            field,
            "no subject",
            "Name the subjects the connection acts as, e.g. integration:my-connection.",
        ));
    }
    for (j, subject) in subjects.iter().enumerate() {
        let name = format!("{field}[{j}]");
        if subject.contains("{{") {
            if !headers_allowed || !subject.contains("header:") {
                out.push(Problem::error(name, format!("'{subject}': no placeholder is allowed here"), "Use a fixed subject; header placeholders only in the sources of types with headers."));
            }
        } else if !crate::auth::is_subject_id(subject) {
            out.push(Problem::error(
                name,
                format!("'{subject}' is not a subject"),
                "Write issuer:subject, e.g. integration:my-connection.",
            ));
        }
    }
}

/// `{{connection:id}}:` in a label becomes the connection's ID.
pub fn resolve_connection_id(label: &str, connection_id: &str) -> String {
    let trimmed = label.trim_start();
    if let Some(rest) = trimmed.strip_prefix("{{") {
        if let Some(end) = rest.find("}}") {
            if rest[..end].trim() == "connection:id" {
                return format!("{connection_id}{}", &rest[end + 2..]);
            }
        }
    }
    label.to_owned()
}

fn ack_label(c: &Connection, field: &str, label: &str, request: bool, out: &mut Vec<Problem>) {
    let resolved = resolve_connection_id(label, &c.id);
    if crate::routing::acks::is_built_in(&resolved) {
        if !request {
            out.push(Problem::error(
                field,
                format!("'{resolved}' is built in"),
                "Only the broker issues it; declare your own label.",
            ));
        }
        return;
    }
    if twinwire_protocol::AckLabel::parse(&resolved).is_err() {
        out.push(
            Problem::error(
                field,
                format!("'{label}' is not a valid label"),
                "Use 3 to 165 of letters, digits, '-', '_' and ':'.",
            )
            .code("acknowledgement:label.invalid"),
        );
        return;
    }
    if !request && !resolved.starts_with(&format!("{}:", c.id)) {
        out.push(Problem::error(
            field,
            format!("'{label}' does not start with the connection ID"),
            format!("Write {}:<name> or {{{{connection:id}}}}:<name>.", c.id),
        ));
    }
}

fn mappers(c: &Connection, field: &str, mapping: &[String], out: &mut Vec<Problem>) {
    if mapping.len() > MAX_MAPPERS {
        out.push(Problem::error(
            field,
            format!("{} mappers, at most {MAX_MAPPERS}", mapping.len()),
            "Combine mappers.",
        ));
    }
    for (j, id) in mapping.iter().enumerate() {
        if !c.mapping_definitions.contains_key(id) && !BUILT_IN_MAPPERS.contains(&id.as_str()) {
            out.push(Problem::error(
                format!("{field}[{j}]"),
                format!("no mapper '{id}'"),
                "Name a mappingDefinitions entry or a built-in mapper.",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(value: serde_json::Value) -> Connection {
        serde_json::from_value(value).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "id": "mqtt-1", "connectionType": "mqtt", "connectionStatus": "open",
            "uri": "tcp://user:pw@127.0.0.1:1883",
            "sources": [{"addresses": ["devices/#"], "qos": 1, "authorizationContext": ["integration:mqtt"]}],
            "targets": [{"address": "out/{{ thing:id }}", "topics": ["_/_/things/twin/events?filter=eq(attributes/x,1)"], "qos": 1,
                         "authorizationContext": ["integration:mqtt"], "issuedAcknowledgementLabel": "{{connection:id}}:sent"}]
        })
    }

    fn fields(value: serde_json::Value) -> Vec<(String, Severity)> {
        validate(&connection(value))
            .into_iter()
            .map(|p| (p.field, p.severity))
            .collect()
    }

    #[test]
    fn a_good_connection_has_no_problem() {
        assert!(
            validate(&connection(base())).is_empty(),
            "{:?}",
            validate(&connection(base()))
        );
    }

    #[test]
    fn each_rule() {
        let mut v = base();
        v["uri"] = json!("amqp://h:1");
        v["sources"][0]["qos"] = json!(null);
        v["sources"][0]["addresses"] = json!(["a", "a", ""]);
        v["sources"][0]["declaredAcks"] = json!(["other:x", "twin-persisted"]);
        v["targets"][0]["topics"] = json!([
            "_/_/things/twin/events?filter=eq(",
            "_/_/things/live/commands?filter=x",
            "nope"
        ]);
        v["targets"][0]["payloadMapping"] = json!(["Mystery"]);
        v["targets"].as_array_mut().unwrap().push(json!({"address": "b", "topics": ["_/_/things/twin/events"], "qos": 0, "authorizationContext": ["bad subject"], "issuedAcknowledgementLabel": "mqtt-1:sent"}));
        let got = fields(v);
        for expected in [
            "uri",
            "sources[0].qos",
            "sources[0].addresses[1]",
            "sources[0].addresses[2]",
            "sources[0].declaredAcks[0]",
            "sources[0].declaredAcks[1]",
            "targets[0].topics[0]",
            "targets[0].topics[1]",
            "targets[0].topics[2]",
            "targets[0].payloadMapping[0]",
            "targets[1].authorizationContext[0]",
            "targets[1].issuedAcknowledgementLabel",
        ] {
            assert!(
                got.iter()
                    .any(|(f, s)| f == expected && *s == Severity::Error),
                "{expected} in {got:?}"
            );
        }
    }

    #[test]
    fn placeholders_are_checked_where_they_are_written() {
        let mut v = base();
        v["targets"][0]["address"] = json!("out/{{ thing:nmae }}");
        v["targets"][0]["headerMapping"] = json!({"x": "{{ header:a | fn:nope() }}"});
        v["sources"][0]["enforcement"] =
            json!({"input": "{{ header:device }}", "filters": ["{{ thing:id }}"]});
        v["sources"][0]["headerMapping"] = json!({"mqtt.topic": "{{ thing:id }}"});
        let problems = validate(&connection(v));
        let find = |field: &str| problems.iter().find(|p| p.field == field).map(|p| p.code);
        assert_eq!(find("targets[0].address"), Some("placeholder:unresolved"));
        assert_eq!(
            find("targets[0].headerMapping.x"),
            Some("placeholder:function.unknown")
        );
        // MQTT 3.1.1: the enforcement input is source:address only; header mapping values only
        // constants and the mqtt.* headers.
        assert!(find("sources[0].enforcement.input").is_some());
        assert!(find("sources[0].headerMapping.mqtt.topic").is_some());
    }

    #[test]
    fn routes_that_cannot_be_acknowledged_are_warned_of() {
        let mut v = base();
        v["sources"][0]["qos"] = json!(0);
        v["sources"][0]["acknowledgementRequests"] = json!({"includes": ["{{connection:id}}:x"]});
        assert!(fields(v).contains(&("sources[0].qos".into(), Severity::Warning)));
    }

    #[test]
    fn adapters_that_cannot_settle_are_warned_of() {
        let c = connection(base());
        assert!(adapter_warnings(&c, Some(true)).is_empty());
        let warnings = adapter_warnings(&c, Some(false));
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            (warnings[0].field.as_str(), warnings[0].severity),
            ("sources[0]", Severity::Warning)
        );
        assert!(warnings[0].message.contains("cannot settle"));
        assert_eq!(adapter_warnings(&c, None)[0].field, "connectionType");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("tcp://user:secret@h:1883"), "tcp://user:***@h:1883");
    }
}
