//! The connection model: Ditto's field names (../shared/ditto-reference/jsonschema/connection.json,
//! docs/basic-connections.md), so a connection JSON from Ditto's documentation, turned into
//! YAML, loads unchanged. Unknown fields are refused (a typo must not silently do nothing);
//! Ditto's read-only and legacy fields (`_revision`, `_created`, `_modified`, `mappingContext`,
//! `sshTunnel`) are accepted.
//!
//! Plain data with serde: the checks that need more than a type are in `validate.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One connection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub connection_type: ConnectionType,
    pub connection_status: ConnectionStatus,
    pub uri: String,
    /// Trusted certificates (PEM); needs a secure URI scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default = "yes")]
    pub validate_certificates: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default = "one")]
    pub client_count: u32,
    #[serde(default = "yes")]
    pub failover_enabled: bool,
    /// Mapping processors per client (Ditto's code default is 1, its schema says 5).
    #[serde(default = "one")]
    pub processor_pool_size: u32,
    /// Binding settings; non-string values are taken as their text (`1` → `"1"`), as Ditto does.
    #[serde(default, deserialize_with = "string_map")]
    pub specific_config: BTreeMap<String, String>,
    #[serde(default)]
    pub mapping_definitions: BTreeMap<String, MappingDefinition>,
    /// The mappers of sources and targets that name none of their own (twinwire accepts the
    /// field the issue lists; Ditto keeps mappers per source and target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_mapping: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Not supported by twinwire's adapters; accepted so Ditto's documents load, refused by
    /// validation when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_tunnel: Option<Value>,
    /// Ditto's legacy JavaScript mapping context; twinwire has no JavaScript mapper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_context: Option<Value>,
    #[serde(default, rename = "_revision", skip_serializing)]
    pub revision: Option<Value>,
    #[serde(default, rename = "_created", skip_serializing)]
    pub created: Option<Value>,
    #[serde(default, rename = "_modified", skip_serializing)]
    pub modified: Option<Value>,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// The connection types; twinwire's adapters serve `amqp-091`, `kafka`, `mqtt` and `mqtt-5`,
/// and a plugin may bring its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum ConnectionType {
    Amqp091,
    Amqp10,
    Mqtt,
    Mqtt5,
    Kafka,
    Hono,
    HttpPush,
    /// A type an adapter plugin registers.
    Other(String),
}

impl ConnectionType {
    pub fn as_str(&self) -> &str {
        match self {
            ConnectionType::Amqp091 => "amqp-091",
            ConnectionType::Amqp10 => "amqp-10",
            ConnectionType::Mqtt => "mqtt",
            ConnectionType::Mqtt5 => "mqtt-5",
            ConnectionType::Kafka => "kafka",
            ConnectionType::Hono => "hono",
            ConnectionType::HttpPush => "http-push",
            ConnectionType::Other(name) => name,
        }
    }

    pub fn is_mqtt(&self) -> bool {
        matches!(self, ConnectionType::Mqtt | ConnectionType::Mqtt5)
    }
}

impl From<String> for ConnectionType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "amqp-091" => ConnectionType::Amqp091,
            "amqp-10" => ConnectionType::Amqp10,
            "mqtt" => ConnectionType::Mqtt,
            "mqtt-5" => ConnectionType::Mqtt5,
            "kafka" => ConnectionType::Kafka,
            "hono" => ConnectionType::Hono,
            "http-push" => ConnectionType::HttpPush,
            _ => ConnectionType::Other(s),
        }
    }
}

impl From<ConnectionType> for String {
    fn from(t: ConnectionType) -> Self {
        t.as_str().to_owned()
    }
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The desired status: the supervisor opens an `open` connection and keeps it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    Open,
    Closed,
}

/// `credentials` (only `client-cert` and `plain` matter for AMQP, MQTT and Kafka).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Credentials {
    ClientCert {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cert: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Plain {
        username: String,
        password: String,
    },
    Hmac {
        algorithm: String,
        #[serde(default)]
        parameters: Map<String, Value>,
    },
    #[serde(rename_all = "camelCase")]
    OauthClientCredentials {
        token_endpoint: String,
        client_id: String,
        client_secret: String,
        #[serde(default)]
        requested_scopes: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    OauthPassword {
        token_endpoint: String,
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<String>,
        #[serde(default)]
        requested_scopes: String,
        username: String,
        password: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
}

/// `sources[]`: where signals come in.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    pub addresses: Vec<String>,
    #[serde(default = "one")]
    pub consumer_count: u32,
    /// MQTT: required (0, 1, 2); Kafka: 0 or 1 (default 0); AMQP 0.9.1 ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<u8>,
    pub authorization_context: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgement_requests: Option<AcknowledgementRequests>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_acks: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_mapping: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_mapping: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_target: Option<ReplyTarget>,
    /// twinwire: how often a message is handed back for redelivery before it counts as poison
    /// (then it goes to `deadLetterTarget`, or is settled as permanent). None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redeliveries: Option<u32>,
    /// twinwire: where poison messages go, with their error (an address on this connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_target: Option<String>,
}

/// `sources[].enforcement`: the message's input must equal one of the resolved filters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enforcement {
    pub input: String,
    #[serde(default)]
    pub filters: Vec<String>,
}

/// `sources[].acknowledgementRequests`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcknowledgementRequests {
    pub includes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// `sources[].replyTarget`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplyTarget {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_mapping: BTreeMap<String, String>,
    /// Default `["response", "error"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_response_types: Option<Vec<ResponseType>>,
}

/// What a reply target publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// Successful responses and positive acknowledgements.
    Response,
    /// Error responses.
    Error,
    /// Negative acknowledgements and aggregated acknowledgements with a failure.
    Nack,
}

/// `targets[]`: where signals go out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub address: String,
    pub topics: Vec<String>,
    pub authorization_context: Vec<String>,
    /// MQTT: required (0, 1, 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_acknowledgement_label: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_mapping: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payload_mapping: Vec<String>,
}

/// `mappingDefinitions.<id>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingDefinition {
    pub mapping_engine: String,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub incoming_conditions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outgoing_conditions: BTreeMap<String, String>,
}

/// `specificConfig`: every value as text.
fn string_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: BTreeMap<String, Value> = BTreeMap::deserialize(deserializer)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dittos_documented_connection_loads() {
        // docs/basic-connections.md's AMQP 0.9.1 example, as JSON.
        let connection: Connection = serde_json::from_value(json!({
            "id": "hono-example-connection-123",
            "connectionType": "amqp-091",
            "connectionStatus": "open",
            "failoverEnabled": true,
            "uri": "amqp://user:password@localhost:5672/vhost",
            "sources": [{
                "addresses": ["queueName"],
                "authorizationContext": ["ditto:inbound-auth-subject"],
                "enforcement": {"input": "{{ header:device_id }}", "filters": ["{{ thing:id }}"]},
                "acknowledgementRequests": {"includes": ["{{connection:id}}:my-custom-ack"]},
                "replyTarget": {"address": "{{header:reply-to}}", "headerMapping": {"correlation-id": "{{header:correlation-id}}"}, "expectedResponseTypes": ["response", "error", "nack"], "enabled": true}
            }],
            "targets": [{
                "address": "exchangeName/routingKey",
                "topics": ["_/_/things/twin/events", "_/_/things/live/messages"],
                "authorizationContext": ["ditto:outbound-auth-subject"],
                "issuedAcknowledgementLabel": "{{connection:id}}:my-ack"
            }],
            "specificConfig": {"prefetchCount": 10},
            "_revision": 3
        }))
        .unwrap();
        assert_eq!(connection.connection_type, ConnectionType::Amqp091);
        assert_eq!(connection.specific_config["prefetchCount"], "10");
        assert_eq!(connection.client_count, 1);
        assert!(connection.validate_certificates);
        let unknown = serde_json::from_value::<Connection>(json!({
            "id": "x", "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://h:1883",
            "sorces": []
        }));
        assert!(unknown.unwrap_err().to_string().contains("sorces"));
    }
}
