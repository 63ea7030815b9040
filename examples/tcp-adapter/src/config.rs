//! The adapter's configuration: the connection as the broker passes it to `create` (Ditto's
//! connection JSON: `uri`, `sources[].addresses`, `specificConfig`).

use std::time::Duration;

use serde_json::Value;

/// What a `tcp-lines` instance needs from its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The connection's ID (for messages only).
    pub id: String,
    /// `host:port`, from `uri` (`tcp://host:port`; user information and a path are ignored).
    pub address: String,
    /// Each source's addresses, in order: a consumed line names its source by its address.
    pub sources: Vec<Vec<String>>,
    /// `specificConfig.reconnectDelayMs` (default 1000): the first wait after a lost or failed
    /// connection; it doubles on each failure up to [`MAX_RECONNECT_DELAY`].
    pub reconnect_delay: Duration,
    /// `specificConfig.connectTimeoutMs` (default 5000).
    pub connect_timeout: Duration,
    /// `specificConfig.maxLineBytes` (default 1 MiB): a longer line drops the connection.
    pub max_line_bytes: usize,
}

/// The longest wait between two connection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

impl Config {
    /// Reads the connection JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, String> {
        let connection: Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("tcp-lines: the configuration is not connection JSON: {e}"))?;
        let id = connection["id"].as_str().unwrap_or("").to_owned();
        let uri = connection["uri"]
            .as_str()
            .ok_or("tcp-lines: the connection has no uri")?;
        let address = address_of(uri)?;
        let sources = connection["sources"]
            .as_array()
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| {
                        s["addresses"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|a| a.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let specific = &connection["specificConfig"];
        let millis = |name: &str, default: u64| -> Result<Duration, String> {
            number(specific, name, default).map(Duration::from_millis)
        };
        Ok(Config {
            id,
            address,
            sources,
            reconnect_delay: millis("reconnectDelayMs", 1_000)?,
            connect_timeout: millis("connectTimeoutMs", 5_000)?,
            max_line_bytes: usize::try_from(number(specific, "maxLineBytes", 1 << 20)?)
                .map_err(|_| "tcp-lines: specificConfig.maxLineBytes is too large".to_owned())?,
        })
    }

    /// The index of the source listing `address`; the first source if none does.
    pub fn source_of(&self, address: &str) -> usize {
        self.sources
            .iter()
            .position(|addresses| addresses.iter().any(|a| a == address))
            .unwrap_or(0)
    }
}

/// `host:port` of `tcp://[user[:password]@]host:port[/path]`.
fn address_of(uri: &str) -> Result<String, String> {
    let rest = uri
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("tcp-lines: the uri must be tcp://host:port, not '{uri}'"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(host_port.to_owned())
        }
        _ => Err(format!(
            "tcp-lines: the uri '{uri}' names no host and port (tcp://host:port)"
        )),
    }
}

/// A `specificConfig` number: Ditto keeps every value as text, so both `1000` and `"1000"` do.
fn number(specific: &Value, name: &str, default: u64) -> Result<u64, String> {
    match &specific[name] {
        Value::Null => Some(default),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("tcp-lines: specificConfig.{name} must be a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_connection() {
        let config = Config::from_json(
            json!({"id": "c", "uri": "tcp://u:p@127.0.0.1:9000/x",
                   "sources": [{"addresses": ["a", "b"]}, {"addresses": ["c"]}],
                   "specificConfig": {"reconnectDelayMs": "50"}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(config.address, "127.0.0.1:9000");
        assert_eq!(config.source_of("c"), 1);
        assert_eq!(config.source_of("b"), 0);
        assert_eq!(config.source_of("elsewhere"), 0);
        assert_eq!(config.reconnect_delay, Duration::from_millis(50));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        for uri in ["amqp://h:1", "tcp://h", "tcp://:1", "tcp://h:x"] {
            let bad = Config::from_json(json!({"uri": uri}).to_string().as_bytes());
            assert!(bad.is_err(), "{uri}");
        }
        assert!(Config::from_json(b"{").is_err());
    }
}
