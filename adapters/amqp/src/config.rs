//! The adapter's configuration: the connection JSON the broker passes to `create` (Ditto's
//! connection model: `uri`, `credentials`, `ca`, `validateCertificates`, `sources`,
//! `specificConfig`), read once and checked.

use std::time::Duration;

use serde_json::Value;
use twinwire_plugin::settings::{text, Setting, Specific};

/// Every `specificConfig` key the adapter reads, with its default: all [`Specific`] lets it read.
/// docs/configuration.md lists them; a test below keeps the two equal.
pub const SPECIFIC_CONFIG: &[Setting] = &[
    Setting::number("maxInFlight", 100),
    Setting::duration("reconnectMinDelay", Duration::from_secs(1)),
    Setting::duration("reconnectMaxDelay", Duration::from_secs(60)),
    Setting::duration("publishTimeout", Duration::from_secs(60)),
];

/// Transport security, from an `amqps://` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// `ca`: PEM certificates to trust instead of the system's.
    pub ca: Option<String>,
    /// `credentials` of type `client-cert`: PEM certificate chain and PKCS#8 key.
    pub client_cert: Option<(String, String)>,
}

/// A source: queues, each consumed by `consumers` consumers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub queues: Vec<String>,
    pub consumers: u32,
}

/// What an AMQP 0.9.1 instance needs from its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The connection's ID (the connection name RabbitMQ shows, log lines).
    pub id: String,
    /// `amqp://user:password@host:port/vhost` (or `amqps://`), the user and password of
    /// `credentials` of type `plain` in it.
    pub uri: String,
    pub tls: Option<Tls>,
    pub sources: Vec<Source>,
    /// `specificConfig.maxInFlight` (twinwire, default 100): consumed messages handed to the
    /// broker and not yet settled, for the whole connection: the consuming channel's prefetch
    /// (`basic.qos` with global), so RabbitMQ sends no more.
    pub max_in_flight: u16,
    /// `specificConfig.reconnectMinDelay` / `reconnectMaxDelay` (twinwire; default 1s and 60s).
    pub reconnect_min_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// `specificConfig.publishTimeout` (twinwire, default 60s as Ditto's pending-ack-ttl): a
    /// publish RabbitMQ has not confirmed by then fails as retryable.
    pub publish_timeout: Duration,
}

impl Config {
    /// Reads the connection JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, String> {
        let connection: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("amqp-091: the configuration is not connection JSON: {e}"))?;
        let id = connection["id"].as_str().unwrap_or("").to_owned();
        let uri = connection["uri"]
            .as_str()
            .ok_or("amqp-091: the connection has no uri")?;
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            format!("amqp-091: the uri '{uri}' has no scheme (amqp:// or amqps://)")
        })?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "amqp" => false,
            "amqps" => true,
            other => {
                return Err(format!(
                    "amqp-091: the uri scheme '{other}' is not amqp or amqps"
                ))
            }
        };
        let credentials = &connection["credentials"];
        let uri = match credentials["type"].as_str() {
            Some("plain") => with_login(
                scheme,
                rest,
                &text(&credentials["username"]).unwrap_or_default(),
                &text(&credentials["password"]).unwrap_or_default(),
            ),
            _ => uri.to_owned(),
        };
        let tls = if secure {
            if connection["validateCertificates"].as_bool() == Some(false) {
                return Err("amqp-091: validateCertificates: false is not supported; give the server's CA in `ca` instead".to_owned());
            }
            Some(Tls {
                ca: connection["ca"].as_str().map(str::to_owned),
                client_cert: match credentials["type"].as_str() {
                    Some("client-cert") => Some((
                        text(&credentials["cert"]).unwrap_or_default(),
                        text(&credentials["key"]).unwrap_or_default(),
                    )),
                    _ => None,
                },
            })
        } else {
            None
        };
        let sources = connection["sources"]
            .as_array()
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| Source {
                        queues: s["addresses"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|a| a.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        consumers: s["consumerCount"].as_u64().unwrap_or(1).clamp(1, 64) as u32,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let specific = Specific::of("amqp-091", &connection, SPECIFIC_CONFIG);
        let max_in_flight = specific.number("maxInFlight")?;
        if max_in_flight == 0 || max_in_flight > u64::from(u16::MAX) {
            return Err(
                "amqp-091: specificConfig.maxInFlight must be between 1 and 65535".to_owned(),
            );
        }
        Ok(Config {
            id,
            uri,
            tls,
            sources,
            max_in_flight: max_in_flight as u16,
            reconnect_min_delay: specific.duration("reconnectMinDelay")?,
            reconnect_max_delay: specific.duration("reconnectMaxDelay")?,
            publish_timeout: specific.duration("publishTimeout")?,
        })
    }

    /// The index of the source consuming `queue`; the first source if none does.
    pub fn source_of(&self, queue: &str) -> usize {
        self.sources
            .iter()
            .position(|s| s.queues.iter().any(|q| q == queue))
            .unwrap_or(0)
    }
}

/// The URI with `user` and `password` as its user information (percent-encoded).
fn with_login(scheme: &str, rest: &str, user: &str, password: &str) -> String {
    let host_and_path = match rest.split_once('/') {
        Some((authority, path)) => (authority.rsplit('@').next().unwrap_or(""), Some(path)),
        None => (rest.rsplit('@').next().unwrap_or(""), None),
    };
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut uri = format!(
        "{scheme}://{}:{}@{}",
        encode(user),
        encode(password),
        host_and_path.0
    );
    if let Some(path) = host_and_path.1 {
        uri.push('/');
        uri.push_str(path);
    }
    uri
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
            "id": "amqp-1", "connectionType": "amqp-091", "uri": "amqp://guest:guest@127.0.0.1:5672/%2f",
            "sources": [{"addresses": ["a", "b"], "consumerCount": 2}, {"addresses": ["c"]}],
            "specificConfig": {"maxInFlight": "10", "reconnectMinDelay": "100ms"}
        }))
        .unwrap();
        assert_eq!(c.uri, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(c.tls, None);
        assert_eq!(c.max_in_flight, 10);
        assert_eq!(c.sources[0].consumers, 2);
        assert_eq!(c.sources[1].consumers, 1);
        assert_eq!(c.source_of("c"), 1);
        assert_eq!(c.source_of("zzz"), 0);
        assert_eq!(c.reconnect_min_delay, Duration::from_millis(100));
        assert_eq!(c.publish_timeout, Duration::from_secs(60));
    }

    #[test]
    fn credentials_replace_the_uri_login() {
        let c = config(json!({
            "id": "a", "uri": "amqps://old:pw@broker:5671/vh",
            "credentials": {"type": "plain", "username": "u@x", "password": "p/w"}, "ca": "PEM"
        }))
        .unwrap();
        assert_eq!(c.uri, "amqps://u%40x:p%2Fw@broker:5671/vh");
        assert_eq!(c.tls.unwrap().ca.as_deref(), Some("PEM"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for bad in [
            json!({"id": "a", "uri": "tcp://h:1"}),
            json!({"id": "a", "uri": "h:1"}),
            json!({"id": "a", "uri": "amqps://h", "validateCertificates": false}),
            json!({"id": "a", "uri": "amqp://h", "specificConfig": {"maxInFlight": "0"}}),
            json!({"id": "a", "uri": "amqp://h", "specificConfig": {"publishTimeout": "soon"}}),
        ] {
            assert!(config(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_reference_lists_every_setting_the_parser_reads() {
        let base =
            json!({"id": "a", "connectionType": "amqp-091", "uri": "amqp://127.0.0.1:5672/%2f"});
        twinwire_tests::config_reference::assert_specific_config(
            "### AMQP 0.9.1 (`amqp-091`)",
            SPECIFIC_CONFIG,
            &base,
            Config::from_json,
        );
    }
}
