//! The adapter's configuration: the connection JSON the broker passes to `create` (Ditto's
//! connection model: `uri`, `credentials`, `ca`, `validateCertificates`, `sources`,
//! `specificConfig`), read once and checked.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde_json::Value;
use twinwire_plugin::settings::{text, Setting, SettingDefault, Specific};

/// Every `specificConfig` key the adapter reads, with its default: all [`Specific`] lets it read.
/// docs/configuration.md lists them; a test below keeps the two equal.
pub const SPECIFIC_CONFIG: &[Setting] = &[
    Setting::new("clientId", SettingDefault::Derived("the connection ID")),
    Setting::flag("cleanSession", false),
    Setting::duration("sessionExpiryInterval", secs(3600)),
    Setting::duration("keepAlive", secs(60)),
    Setting::flag("separatePublisherClient", false),
    Setting::new(
        "publisherId",
        SettingDefault::Derived("the client ID with `p` appended"),
    ),
    Setting::flag("reconnectForRedelivery", true),
    Setting::duration("reconnectForRedeliveryDelay", secs(2)),
    Setting::new("lastWillTopic", SettingDefault::Unset),
    Setting::number("lastWillQos", 0),
    Setting::flag("lastWillRetain", false),
    Setting::new("lastWillMessage", SettingDefault::Text("")),
    Setting::number("maxInFlight", 100),
    Setting::duration("reconnectMinDelay", secs(1)),
    Setting::duration("reconnectMaxDelay", secs(60)),
    Setting::duration("publishTimeout", secs(30)),
    Setting::duration("connectTimeout", secs(10)),
];

/// The MQTT protocol version: connection type `mqtt` or `mqtt-5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// Transport security, from an `ssl://` or `mqtts://` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `ca`: PEM certificates to trust instead of the system's.
    pub ca: Option<String>,
    /// `credentials` of type `client-cert`: PEM certificate chain and key.
    pub client_cert: Option<(String, String)>,
    /// `validateCertificates` (default true).
    pub validate: bool,
}

/// A source: topic filters subscribed with a maximum qos.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub addresses: Vec<String>,
    pub qos: u8,
}

/// The Last Will (`specificConfig.lastWill*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWill {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub message: String,
}

/// What an MQTT instance needs from its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The connection's ID (client ID default, log lines).
    pub id: String,
    pub version: Version,
    pub host: String,
    pub port: u16,
    pub tls: Option<Tls>,
    /// User name and password: `credentials` of type `plain`, else the URI's user information.
    pub login: Option<(String, String)>,
    pub sources: Vec<Source>,
    /// `specificConfig.clientId` (default: the connection ID).
    pub client_id: String,
    /// The publisher's client ID when `specificConfig.separatePublisherClient` is true
    /// (`publisherId`, default the client ID with `p` appended).
    pub publisher_id: Option<String>,
    /// `specificConfig.keepAlive` (default 60s).
    pub keep_alive: Duration,
    /// `specificConfig.cleanSession` (default false; MQTT 5: clean start).
    pub clean_session: bool,
    /// `specificConfig.sessionExpiryInterval` (MQTT 5; default 1h, 0 when `cleanSession`): how
    /// long the server keeps the session, and what it owes us, after a disconnect.
    pub session_expiry: Duration,
    /// `specificConfig.reconnectForRedelivery`: on a retryable outcome, withhold the
    /// acknowledgement and reconnect so that the server redelivers. Default **true** (Ditto's
    /// default is false, which acknowledges the message anyway and loses it).
    pub reconnect_for_redelivery: bool,
    /// `specificConfig.reconnectForRedeliveryDelay` (default 2s, at least 1s).
    pub reconnect_for_redelivery_delay: Duration,
    pub last_will: Option<LastWill>,
    /// `specificConfig.maxInFlight` (twinwire, default 100): consumed messages handed to the
    /// broker and not yet settled; reading pauses at the bound. MQTT 5 tells the server as its
    /// receive maximum; an MQTT 3.1.1 server sends at most its own window (Mosquitto:
    /// `max_inflight_messages`, default 20).
    pub max_in_flight: usize,
    /// `specificConfig.reconnectMinDelay` / `reconnectMaxDelay` (twinwire; default 1s and 60s,
    /// as the connection supervisor's): the wait after a lost connection doubles from the first
    /// to the second, with jitter.
    pub reconnect_min_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// `specificConfig.publishTimeout` (twinwire, default 30s): a publish not acknowledged by
    /// the server within it fails as retryable.
    pub publish_timeout: Duration,
    /// `specificConfig.connectTimeout` (twinwire, default 10s).
    pub connect_timeout: Duration,
}

impl Config {
    /// Reads the connection JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, String> {
        let connection: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("mqtt: the configuration is not connection JSON: {e}"))?;
        let id = connection["id"].as_str().unwrap_or("").to_owned();
        let version = match connection["connectionType"].as_str() {
            Some("mqtt-5") => Version::V5,
            Some("mqtt") | None => Version::V311,
            Some(other) => return Err(format!("mqtt: cannot serve connection type '{other}'")),
        };
        let uri = connection["uri"]
            .as_str()
            .ok_or("mqtt: the connection has no uri")?;
        let parsed = Uri::parse(uri)?;
        let specific = Specific::of("mqtt", &connection, SPECIFIC_CONFIG);
        let credentials = &connection["credentials"];
        let login = match credentials["type"].as_str() {
            Some("plain") => Some((
                text(&credentials["username"]).unwrap_or_default(),
                text(&credentials["password"]).unwrap_or_default(),
            )),
            _ => parsed.login.clone(),
        };
        let tls = parsed.secure.then(|| Tls {
            ca: connection["ca"].as_str().map(str::to_owned),
            client_cert: match credentials["type"].as_str() {
                Some("client-cert") => Some((
                    text(&credentials["cert"]).unwrap_or_default(),
                    text(&credentials["key"]).unwrap_or_default(),
                )),
                _ => None,
            },
            validate: connection["validateCertificates"].as_bool().unwrap_or(true),
        });
        let sources = connection["sources"]
            .as_array()
            .map(|sources| sources.iter().map(source).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default();
        let client_id = specific.text("clientId")?.unwrap_or_else(|| id.clone());
        if client_id.is_empty() {
            return Err("mqtt: the connection needs an id or specificConfig.clientId".to_owned());
        }
        let publisher_id = if specific.flag("separatePublisherClient")? {
            Some(
                specific
                    .text("publisherId")?
                    .unwrap_or_else(|| format!("{client_id}p")),
            )
        } else {
            None
        };
        let clean_session = specific.flag("cleanSession")?;
        let last_will = specific
            .text("lastWillTopic")?
            .map(|topic| -> Result<LastWill, String> {
                let qos = specific.number("lastWillQos")?;
                if qos > 2 {
                    return Err(format!(
                        "mqtt: specificConfig.lastWillQos must be 0, 1 or 2, not {qos}"
                    ));
                }
                Ok(LastWill {
                    topic,
                    qos: qos as u8,
                    retain: specific.flag("lastWillRetain")?,
                    message: specific.string("lastWillMessage")?,
                })
            })
            .transpose()?;
        let max_in_flight = specific.number("maxInFlight")?;
        if max_in_flight == 0 || max_in_flight > u64::from(u16::MAX) {
            return Err("mqtt: specificConfig.maxInFlight must be between 1 and 65535".to_owned());
        }
        let redelivery_delay = specific.duration("reconnectForRedeliveryDelay")?;
        if redelivery_delay < secs(1) {
            return Err(
                "mqtt: specificConfig.reconnectForRedeliveryDelay must be at least 1s".to_owned(),
            );
        }
        let keep_alive = specific.duration("keepAlive")?;
        if keep_alive > secs(u64::from(u16::MAX)) {
            return Err("mqtt: specificConfig.keepAlive must be at most 65535s".to_owned());
        }
        // A clean session ends with the connection unless told otherwise.
        let session_expiry = match specific.text("sessionExpiryInterval")? {
            None if clean_session => secs(0),
            _ => specific.duration("sessionExpiryInterval")?,
        };
        Ok(Config {
            id,
            version,
            host: parsed.host,
            port: parsed.port,
            tls,
            login,
            sources,
            client_id,
            publisher_id,
            keep_alive,
            clean_session,
            session_expiry,
            reconnect_for_redelivery: specific.flag("reconnectForRedelivery")?,
            reconnect_for_redelivery_delay: redelivery_delay,
            last_will,
            max_in_flight: max_in_flight as usize,
            reconnect_min_delay: specific.duration("reconnectMinDelay")?,
            reconnect_max_delay: specific.duration("reconnectMaxDelay")?,
            publish_timeout: specific.duration("publishTimeout")?,
            connect_timeout: specific.duration("connectTimeout")?,
        })
    }

    /// The index of the source whose topic filters match `topic`; the first source if none does.
    pub fn source_of(&self, topic: &str) -> usize {
        self.sources
            .iter()
            .position(|s| s.addresses.iter().any(|f| topic_matches(f, topic)))
            .unwrap_or(0)
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The parts of `tcp://[user[:password]@]host[:port]` (`mqtt://` alike; `ssl://`, `mqtts://`
/// for TLS).
struct Uri {
    secure: bool,
    host: String,
    port: u16,
    login: Option<(String, String)>,
}

impl Uri {
    fn parse(uri: &str) -> Result<Uri, String> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| format!("mqtt: the uri '{uri}' has no scheme (tcp:// or ssl://)"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => false,
            "ssl" | "mqtts" | "tls" => true,
            other => {
                return Err(format!(
                    "mqtt: the uri scheme '{other}' is not tcp, mqtt, ssl or mqtts"
                ))
            }
        };
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let login = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (decode(user), decode(password))
        });
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host_port.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("mqtt: the uri '{uri}' has an invalid port"))?;
                (host, port)
            }
            _ => (host_port, if secure { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("mqtt: the uri '{uri}' names no host"));
        }
        Ok(Uri {
            secure,
            host: host.to_owned(),
            port,
            login,
        })
    }
}

fn decode(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

fn source(source: &Value) -> Result<Source, String> {
    let addresses: Vec<String> = source["addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Source {
        qos: qos(&source["qos"], "sources[].qos")?.ok_or_else(|| {
            format!(
                "mqtt: the source {addresses:?} must contain a qos (0, 1 or 2; 1 or 2 for at least once)"
            )
        })?,
        addresses,
    })
}

fn qos(value: &Value, name: &str) -> Result<Option<u8>, String> {
    match text(value) {
        None => Ok(None),
        Some(q) => match q.trim() {
            "0" => Ok(Some(0)),
            "1" => Ok(Some(1)),
            "2" => Ok(Some(2)),
            _ => Err(format!("mqtt: {name} must be 0, 1 or 2, not {q}")),
        },
    }
}

/// Whether the topic filter `filter` (with `+` and `#`) matches `topic` (MQTT 4.7).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    // Topics starting with `$` are not matched by filters starting with a wildcard.
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.split('/');
    for part in filter.split('/') {
        match part {
            "#" => return true,
            "+" => {
                if levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(connection: Value) -> Result<Config, String> {
        Config::from_json(connection.to_string().as_bytes())
    }

    #[test]
    fn reads_the_connection() {
        let c = config(json!({
            "id": "mqtt-1", "connectionType": "mqtt-5", "uri": "tcp://dev%40x:p%3Ass@127.0.0.1:1884",
            "sources": [{"addresses": ["a/#"], "qos": 1}, {"addresses": ["b/+/c"], "qos": "2"}],
            "specificConfig": {"keepAlive": "30s", "separatePublisherClient": "true",
                               "lastWillTopic": "dead", "lastWillQos": "1", "maxInFlight": "10",
                               "reconnectForRedeliveryDelay": "1500ms"}
        }))
        .unwrap();
        assert_eq!(c.version, Version::V5);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 1884));
        assert_eq!(c.login, Some(("dev@x".to_owned(), "p:ss".to_owned())));
        assert_eq!(c.tls, None);
        assert_eq!(c.client_id, "mqtt-1");
        assert_eq!(c.publisher_id.as_deref(), Some("mqtt-1p"));
        assert_eq!(c.keep_alive, secs(30));
        assert_eq!(c.max_in_flight, 10);
        assert_eq!(
            c.reconnect_for_redelivery_delay,
            Duration::from_millis(1500)
        );
        assert!(c.reconnect_for_redelivery);
        assert_eq!(c.session_expiry, secs(3600));
        assert_eq!(c.last_will.as_ref().map(|w| w.qos), Some(1));
        assert_eq!(c.source_of("b/x/c"), 1);
        assert_eq!(c.source_of("a/1/2"), 0);
        assert_eq!(c.sources[1].qos, 2);
    }

    #[test]
    fn tls_and_credentials() {
        let c = config(json!({
            "id": "m", "connectionType": "mqtt", "uri": "ssl://u:p@broker", "ca": "PEM",
            "validateCertificates": false,
            "credentials": {"type": "plain", "username": "x", "password": "y"},
            "sources": []
        }))
        .unwrap();
        assert_eq!(c.port, 8883);
        assert_eq!(c.login, Some(("x".to_owned(), "y".to_owned())));
        let tls = c.tls.unwrap();
        assert_eq!(tls.ca.as_deref(), Some("PEM"));
        assert!(!tls.validate);
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            json!({"id": "m", "uri": "amqp://h:1"}),
            json!({"id": "m", "uri": "tcp://:1"}),
            json!({"id": "m", "uri": "tcp://h:x"}),
            json!({"id": "m", "uri": "tcp://h", "sources": [{"addresses": ["a"]}]}),
            json!({"id": "m", "uri": "tcp://h", "sources": [{"addresses": ["a"], "qos": 3}]}),
            json!({"id": "m", "uri": "tcp://h", "specificConfig": {"cleanSession": "maybe"}}),
            json!({"id": "m", "uri": "tcp://h", "specificConfig": {"keepAlive": "soon"}}),
            json!({"id": "m", "uri": "tcp://h", "specificConfig": {"maxInFlight": "0"}}),
            json!({"id": "m", "uri": "tcp://h", "specificConfig": {"reconnectForRedeliveryDelay": "10ms"}}),
            json!({"id": "m", "connectionType": "kafka", "uri": "tcp://h"}),
        ] {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_filters() {
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+/c", "a/b/d"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(topic_matches("+/+", "a/b"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(topic_matches("a/b", "a/b"));
        assert!(!topic_matches("a/b", "a/b/c"));
    }

    #[test]
    fn the_reference_lists_every_setting_the_parser_reads() {
        // A second client and a Last Will, so that their keys are read too.
        let base = json!({"id": "m", "connectionType": "mqtt-5", "uri": "tcp://127.0.0.1:1883",
            "specificConfig": {"separatePublisherClient": "true", "lastWillTopic": "will"}});
        twinwire_tests::config_reference::assert_specific_config(
            "### MQTT (`mqtt`, `mqtt-5`)",
            SPECIFIC_CONFIG,
            &base,
            Config::from_json,
        );
    }
}
