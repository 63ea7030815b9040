//! The adapter's configuration: the connection JSON the broker passes to `create` (Ditto's
//! connection model: `id`, `uri`, `credentials`, `ca`, `validateCertificates`, `sources`,
//! `specificConfig`), read once, checked, and turned into librdkafka properties.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use twinwire_plugin::settings::{text, Setting, SettingDefault, Specific};

/// Every `specificConfig` key the adapter reads, with its default: all [`Specific`] lets it read.
/// docs/configuration.md lists them; a test below keeps the two equal.
pub const SPECIFIC_CONFIG: &[Setting] = &[
    Setting::new("bootstrapServers", SettingDefault::Required),
    Setting::new("saslMechanism", SettingDefault::Text("plain")),
    Setting::new("groupId", SettingDefault::Derived("the connection ID")),
    Setting::new("consumerOffsetReset", SettingDefault::Unset),
    Setting::number("consumerThrottlingLimit", 0),
    Setting::number("maxInFlight", 1000),
    Setting::duration("commitInterval", Duration::from_millis(200)),
    Setting::duration("drainTimeout", Duration::from_secs(5)),
    Setting::duration("publishTimeout", Duration::from_secs(60)),
    Setting::flag("debugEnabled", false),
    Setting::duration("statisticsInterval", Duration::from_secs(10)),
    Setting::duration("reconnectMinDelay", Duration::from_secs(1)),
    Setting::duration("reconnectMaxDelay", Duration::from_secs(60)),
    Setting::new("librdkafka.", SettingDefault::Prefix),
    Setting::new("librdkafka-consumer.", SettingDefault::Prefix),
    Setting::new("librdkafka-producer.", SettingDefault::Prefix),
];

/// Property names whose values are never shown (in `Debug`, errors or logs).
const SECRET_PROPERTIES: &[&str] = &["sasl.password", "ssl.key.pem", "ssl.key.password"];

/// A source: topics consumed in the connection's consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub topics: Vec<String>,
    /// `qos: 1`: an offset is committed only once its message is settled; `qos: 0` (Ditto's
    /// default): committed when consumed, whatever becomes of the message.
    pub at_least_once: bool,
}

/// What a Kafka instance needs from its connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The connection's ID (client ID, default group ID, the `ditto-connection-id` header).
    pub id: String,
    /// librdkafka properties of both clients: bootstrap servers, security, SASL, TLS and the
    /// `librdkafka.*` pass-through.
    pub common: Vec<(String, String)>,
    /// `librdkafka-consumer.*` and `librdkafka-producer.*`: for one client only.
    pub consumer_only: Vec<(String, String)>,
    pub producer_only: Vec<(String, String)>,
    /// `specificConfig.groupId` (default: the connection ID; `{{ connection:id }}` allowed).
    pub group_id: String,
    /// `specificConfig.consumerOffsetReset`: `earliest` or `latest` (Kafka's default, latest).
    pub offset_reset: Option<String>,
    pub sources: Vec<Source>,
    /// `specificConfig.maxInFlight` (twinwire, default 1000): consumed messages handed to the
    /// broker and not yet settled; at the bound the adapter stops fetching.
    pub max_in_flight: usize,
    /// `specificConfig.consumerThrottlingLimit` (Ditto's consumer throttling limit, default 0:
    /// off): at most this many messages consumed a second.
    pub throttling_limit: u32,
    /// `specificConfig.publishTimeout` (twinwire, default 60s): how long a send waits for room in
    /// a full producer queue and for its delivery report (librdkafka's `message.timeout.ms`).
    pub publish_timeout: Duration,
    /// `specificConfig.debugEnabled` (Ditto's, default false): a target's acknowledgement
    /// carries the record metadata (200) instead of no content (204).
    pub debug_enabled: bool,
    /// `specificConfig.commitInterval` (twinwire, default 200ms): how often settled offsets are
    /// committed (and always on rebalance and shutdown).
    pub commit_interval: Duration,
    /// `specificConfig.drainTimeout` (twinwire, default 5s): how long a rebalance or shutdown
    /// waits for the messages of released partitions to settle.
    pub drain_timeout: Duration,
    /// `specificConfig.statisticsInterval` (twinwire, default 10s): how often consumer lag is
    /// reported (librdkafka's `statistics.interval.ms`); 0 turns it off.
    pub statistics_interval: Duration,
    /// `specificConfig.reconnectMinDelay` / `reconnectMaxDelay` (twinwire; 1s and 60s): the
    /// cluster is checked again with this backoff while it cannot be reached.
    pub reconnect_min_delay: Duration,
    pub reconnect_max_delay: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |list: &[(String, String)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| {
                    let shown = if SECRET_PROPERTIES.contains(&k.as_str()) {
                        "<secret>".to_owned()
                    } else {
                        v.clone()
                    };
                    (k.clone(), shown)
                })
                .collect()
        };
        f.debug_struct("Config")
            .field("id", &self.id)
            .field("common", &redacted(&self.common))
            .field("consumer_only", &redacted(&self.consumer_only))
            .field("producer_only", &redacted(&self.producer_only))
            .field("group_id", &self.group_id)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the connection JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, String> {
        let connection: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("kafka: the configuration is not connection JSON: {e}"))?;
        let id = connection["id"].as_str().unwrap_or("").to_owned();
        let specific = Specific::of("kafka", &connection, SPECIFIC_CONFIG);
        let mut common = vec![
            ("client.id".to_owned(), format!("twinwire-{id}")),
            (
                "bootstrap.servers".to_owned(),
                bootstrap_servers(specific.text("bootstrapServers")?)?,
            ),
        ];
        common.extend(security(&connection, &specific)?);
        for (key, value) in specific.prefixed("librdkafka.")? {
            common.retain(|(k, _)| *k != key);
            common.push((key, value));
        }
        let group_id = group_id(specific.text("groupId")?, &id)?;
        let offset_reset = match specific.text("consumerOffsetReset")? {
            None => None,
            Some(r) if r == "earliest" || r == "latest" => Some(r),
            Some(other) => {
                return Err(format!(
                "kafka: specificConfig.consumerOffsetReset must be earliest or latest, not {other}"
            ))
            }
        };
        let sources = sources(&connection)?;
        let max_in_flight = specific.number("maxInFlight")?;
        if max_in_flight == 0 {
            return Err("kafka: specificConfig.maxInFlight must be at least 1".to_owned());
        }
        let throttling_limit = specific.number("consumerThrottlingLimit")?;
        let publish_timeout = specific.duration("publishTimeout")?;
        if publish_timeout < Duration::from_millis(1) {
            return Err("kafka: specificConfig.publishTimeout must be at least 1ms".to_owned());
        }
        Ok(Config {
            id,
            common,
            consumer_only: specific.prefixed("librdkafka-consumer.")?,
            producer_only: specific.prefixed("librdkafka-producer.")?,
            group_id,
            offset_reset,
            sources,
            max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
            throttling_limit: u32::try_from(throttling_limit).unwrap_or(u32::MAX),
            publish_timeout,
            debug_enabled: specific.flag("debugEnabled")?,
            commit_interval: specific.duration("commitInterval")?,
            drain_timeout: specific.duration("drainTimeout")?,
            statistics_interval: specific.duration("statisticsInterval")?,
            reconnect_min_delay: specific.duration("reconnectMinDelay")?,
            reconnect_max_delay: specific.duration("reconnectMaxDelay")?,
        })
    }

    /// The consumer's properties: automatic commits and offset storing off (the adapter commits
    /// what is settled), the group, the offset reset, lag statistics.
    pub fn consumer_properties(&self) -> Vec<(String, String)> {
        let mut properties = self.common.clone();
        properties.extend([
            ("group.id".to_owned(), self.group_id.clone()),
            ("enable.auto.commit".to_owned(), "false".to_owned()),
            ("enable.auto.offset.store".to_owned(), "false".to_owned()),
            (
                "statistics.interval.ms".to_owned(),
                self.statistics_interval.as_millis().to_string(),
            ),
        ]);
        if let Some(reset) = &self.offset_reset {
            properties.push(("auto.offset.reset".to_owned(), reset.clone()));
        }
        overlay(properties, &self.consumer_only)
    }

    /// The producer's properties: every in-sync replica acknowledges (`acks=all`), and a message
    /// not delivered within the publish timeout fails.
    pub fn producer_properties(&self) -> Vec<(String, String)> {
        let mut properties = self.common.clone();
        properties.extend([
            ("acks".to_owned(), "all".to_owned()),
            (
                "message.timeout.ms".to_owned(),
                self.publish_timeout.as_millis().to_string(),
            ),
        ]);
        overlay(properties, &self.producer_only)
    }

    /// The index of the source consuming `topic`; the first source if none does.
    pub fn source_of(&self, topic: &str) -> usize {
        self.sources
            .iter()
            .position(|s| s.topics.iter().any(|t| t == topic))
            .unwrap_or(0)
    }

    /// Every topic the sources consume, once.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for topic in self.sources.iter().flat_map(|s| &s.topics) {
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        topics
    }
}

/// `base` with `over`'s values replacing or adding keys.
fn overlay(mut base: Vec<(String, String)>, over: &[(String, String)]) -> Vec<(String, String)> {
    for (key, value) in over {
        base.retain(|(k, _)| k != key);
        base.push((key.clone(), value.clone()));
    }
    base
}

/// `specificConfig.bootstrapServers`: required, comma-separated `host:port`.
fn bootstrap_servers(raw: Option<String>) -> Result<String, String> {
    let raw = raw.ok_or("kafka: specificConfig.bootstrapServers is required (host:port,...)")?;
    let servers: Vec<&str> = raw.split(',').map(str::trim).collect();
    for server in &servers {
        let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(['/', ' ']) && port.parse::<u16>().is_ok()
        });
        if !valid {
            return Err(format!(
                "kafka: specificConfig.bootstrapServers: '{server}' is not host:port"
            ));
        }
    }
    Ok(servers.join(","))
}

/// `specificConfig.groupId`: the connection ID by default; `{{ connection:id }}` resolves to it.
fn group_id(raw: Option<String>, id: &str) -> Result<String, String> {
    let Some(raw) = raw else {
        return Ok(id.to_owned());
    };
    let mut resolved = String::new();
    let mut rest = raw.as_str();
    while let Some(start) = rest.find("{{") {
        resolved.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or_else(|| {
            format!("kafka: specificConfig.groupId '{raw}' has an open placeholder")
        })?;
        let name = rest[start + 2..start + end].trim();
        if name != "connection:id" {
            return Err(format!(
                "kafka: specificConfig.groupId may only use {{{{ connection:id }}}}, not {{{{ {name} }}}}"
            ));
        }
        resolved.push_str(id);
        rest = &rest[start + end + 2..];
    }
    resolved.push_str(rest);
    if resolved.is_empty()
        || !resolved
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "kafka: specificConfig.groupId '{resolved}' may only have the characters a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(resolved)
}

/// The sources' topics and qos.
fn sources(connection: &Value) -> Result<Vec<Source>, String> {
    let Some(list) = connection["sources"].as_array() else {
        return Ok(Vec::new());
    };
    let mut sources = Vec::new();
    for (i, source) in list.iter().enumerate() {
        let topics: Vec<String> = source["addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for topic in &topics {
            if !valid_topic(topic) {
                return Err(format!(
                    "kafka: sources[{i}]: '{topic}' is not a Kafka topic (a-z, A-Z, 0-9, '.', '_', '-'; at most 249)"
                ));
            }
        }
        let at_least_once = match source["qos"].as_u64() {
            None | Some(0) => false,
            Some(1) => true,
            Some(other) => return Err(format!("kafka: sources[{i}].qos is 0 or 1, not {other}")),
        };
        sources.push(Source {
            topics,
            at_least_once,
        });
    }
    Ok(sources)
}

/// Kafka's topic name rule.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `security.protocol`, SASL and TLS properties from the URI scheme, its user information or
/// `credentials`, `ca`, `validateCertificates` and `specificConfig.saslMechanism`.
fn security(connection: &Value, specific: &Specific<'_>) -> Result<Vec<(String, String)>, String> {
    let uri = connection["uri"]
        .as_str()
        .ok_or("kafka: the connection has no uri")?;
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| "kafka: the uri has no scheme (tcp:// or ssl://)".to_owned())?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "ssl" => true,
        other => return Err(format!("kafka: the uri scheme '{other}' is not tcp or ssl")),
    };
    let credentials = &connection["credentials"];
    let login = match credentials["type"].as_str() {
        Some("plain") => Some((
            text(&credentials["username"]).unwrap_or_default(),
            text(&credentials["password"]).unwrap_or_default(),
        )),
        _ => user_info(rest),
    };
    let mut properties = Vec::new();
    let protocol = match (secure, login.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    properties.push(("security.protocol".to_owned(), protocol.to_owned()));
    if let Some((user, password)) = login {
        let mechanism = match specific
            .string("saslMechanism")?
            .to_ascii_lowercase()
            .as_str()
        {
            "plain" => "PLAIN",
            "scram-sha-256" => "SCRAM-SHA-256",
            "scram-sha-512" => "SCRAM-SHA-512",
            other => {
                return Err(format!(
                    "kafka: specificConfig.saslMechanism must be plain, scram-sha-256 or scram-sha-512, not {other}"
                ))
            }
        };
        properties.push(("sasl.mechanism".to_owned(), mechanism.to_owned()));
        properties.push(("sasl.username".to_owned(), user));
        properties.push(("sasl.password".to_owned(), password));
    }
    if secure {
        if let Some(ca) = connection["ca"].as_str() {
            properties.push(("ssl.ca.pem".to_owned(), ca.to_owned()));
        }
        if credentials["type"].as_str() == Some("client-cert") {
            properties.push((
                "ssl.certificate.pem".to_owned(),
                text(&credentials["cert"]).unwrap_or_default(),
            ));
            properties.push((
                "ssl.key.pem".to_owned(),
                text(&credentials["key"]).unwrap_or_default(),
            ));
        }
        if connection["validateCertificates"].as_bool() == Some(false) {
            properties.push((
                "enable.ssl.certificate.verification".to_owned(),
                "false".to_owned(),
            ));
        }
    } else if connection["ca"].is_string() {
        return Err("kafka: a ca is given but the uri is not ssl://".to_owned());
    }
    Ok(properties)
}

/// `user:password` of `user:password@host:port/...`, percent-decoded.
fn user_info(rest: &str) -> Option<(String, String)> {
    let authority = rest.split('/').next().unwrap_or("");
    let (info, _) = authority.rsplit_once('@')?;
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    Some((percent_decode(user), percent_decode(password)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(connection: Value) -> Result<Config, String> {
        Config::from_json(connection.to_string().as_bytes())
    }

    fn get<'a>(list: &'a [(String, String)], key: &str) -> Option<&'a str> {
        list.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn reads_the_connection() {
        let c = config(json!({
            "id": "k1", "connectionType": "kafka", "uri": "tcp://127.0.0.1:9092",
            "sources": [{"addresses": ["a", "b"], "qos": 1}, {"addresses": ["c"]}],
            "specificConfig": {
                "bootstrapServers": "127.0.0.1:9092, localhost:9093",
                "consumerOffsetReset": "earliest", "maxInFlight": "10",
                "librdkafka.socket.timeout.ms": "5000", "librdkafka-producer.linger.ms": "1"
            }
        }))
        .unwrap();
        assert_eq!(
            get(&c.common, "bootstrap.servers"),
            Some("127.0.0.1:9092,localhost:9093")
        );
        assert_eq!(get(&c.common, "security.protocol"), Some("plaintext"));
        assert_eq!(get(&c.common, "socket.timeout.ms"), Some("5000"));
        assert_eq!(c.group_id, "k1");
        assert_eq!(c.max_in_flight, 10);
        assert!(c.sources[0].at_least_once && !c.sources[1].at_least_once);
        assert_eq!(c.source_of("c"), 1);
        assert_eq!(c.topics(), vec!["a", "b", "c"]);
        let consumer = c.consumer_properties();
        assert_eq!(get(&consumer, "enable.auto.offset.store"), Some("false"));
        assert_eq!(get(&consumer, "enable.auto.commit"), Some("false"));
        assert_eq!(get(&consumer, "auto.offset.reset"), Some("earliest"));
        assert_eq!(get(&consumer, "linger.ms"), None);
        let producer = c.producer_properties();
        assert_eq!(get(&producer, "acks"), Some("all"));
        assert_eq!(get(&producer, "linger.ms"), Some("1"));
        assert_eq!(get(&producer, "message.timeout.ms"), Some("60000"));
    }

    #[test]
    fn sasl_and_tls_from_the_uri_or_credentials() {
        let c = config(json!({
            "id": "k2", "uri": "ssl://us%40er:p%3Ass@broker:9093", "ca": "PEM",
            "specificConfig": {"bootstrapServers": "broker:9093", "saslMechanism": "SCRAM-SHA-512",
                               "groupId": "g-{{ connection:id }}"}
        }))
        .unwrap();
        assert_eq!(get(&c.common, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&c.common, "sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&c.common, "sasl.username"), Some("us@er"));
        assert_eq!(get(&c.common, "sasl.password"), Some("p:ss"));
        assert_eq!(get(&c.common, "ssl.ca.pem"), Some("PEM"));
        assert_eq!(c.group_id, "g-k2");
        let shown = format!("{c:?}");
        assert!(!shown.contains("p:ss"), "{shown}");
        let c = config(json!({
            "id": "k3", "uri": "tcp://old:old@broker:9092",
            "credentials": {"type": "plain", "username": "u", "password": "secret"},
            "specificConfig": {"bootstrapServers": "broker:9092"}
        }))
        .unwrap();
        assert_eq!(get(&c.common, "security.protocol"), Some("sasl_plaintext"));
        assert_eq!(get(&c.common, "sasl.mechanism"), Some("PLAIN"));
        assert_eq!(get(&c.common, "sasl.username"), Some("u"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let ok = json!({"bootstrapServers": "h:9092"});
        for (uri, specific, sources) in [
            ("tcp://h:9092", json!({}), json!([])),
            ("tcp://h:9092", json!({"bootstrapServers": "h"}), json!([])),
            (
                "tcp://h:9092",
                json!({"bootstrapServers": "h:x"}),
                json!([]),
            ),
            ("amqp://h:9092", ok.clone(), json!([])),
            (
                "tcp://u:p@h:9092",
                json!({"bootstrapServers": "h:1", "saslMechanism": "gssapi"}),
                json!([]),
            ),
            (
                "tcp://h:9092",
                json!({"bootstrapServers": "h:1", "groupId": "a b"}),
                json!([]),
            ),
            (
                "tcp://h:9092",
                json!({"bootstrapServers": "h:1", "groupId": "{{ thing:id }}"}),
                json!([]),
            ),
            (
                "tcp://h:9092",
                json!({"bootstrapServers": "h:1", "consumerOffsetReset": "middle"}),
                json!([]),
            ),
            (
                "tcp://h:9092",
                json!({"bootstrapServers": "h:1", "maxInFlight": 0}),
                json!([]),
            ),
            ("tcp://h:9092", ok.clone(), json!([{"addresses": ["a/b"]}])),
            (
                "tcp://h:9092",
                ok.clone(),
                json!([{"addresses": ["a"], "qos": 2}]),
            ),
        ] {
            let connection =
                json!({"id": "k", "uri": uri, "specificConfig": specific, "sources": sources});
            assert!(config(connection.clone()).is_err(), "{connection}");
        }
    }

    #[test]
    fn the_reference_lists_every_setting_the_parser_reads() {
        // A login, so that the SASL mechanism is read.
        let base = json!({"id": "k", "connectionType": "kafka", "uri": "tcp://u:p@127.0.0.1:9092",
            "specificConfig": {"bootstrapServers": "127.0.0.1:9092"}});
        twinwire_tests::config_reference::assert_specific_config(
            "### Kafka (`kafka`)",
            SPECIFIC_CONFIG,
            &base,
            Config::from_json,
        );
    }
}
