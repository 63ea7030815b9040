//! `twinwire.yaml`: the broker's settings. Every setting has a default, so `twinwire run` needs
//! no file at all; the common ones also have flags (`twinwire run --help`), which win over the
//! file. Unknown keys are refused, naming the key and its line, so a typo never goes unnoticed.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP, WebSocket and SSE gateway listens.
    pub listen: SocketAddr,
    /// Where the journal lives [default: $XDG_DATA_HOME/twinwire or ~/.local/share/twinwire].
    pub data_dir: Option<PathBuf>,
    /// The directory of connection YAML files, watched while the broker runs.
    pub connections: Option<PathBuf>,
    /// The directory of adapter plugins [default: plugins/ beside the binary].
    pub plugins: Option<PathBuf>,
    /// Serve HTTPS and WSS instead of HTTP and WS.
    pub tls: Option<TlsConfig>,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub engine: EngineSettings,
}

/// The listener's certificate chain and private key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: None,
            connections: None,
            plugins: None,
            tls: None,
            auth: AuthConfig::default(),
            limits: Limits::default(),
            engine: EngineSettings::default(),
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HTTP basic auth users; each authenticates as the subject `nginx:<name>`.
    pub users: Vec<User>,
    /// Trust an `x-ditto-pre-authenticated` header set by a proxy in front.
    pub pre_authenticated: PreAuthenticated,
    /// Verify `Authorization: Bearer` JSON Web Tokens.
    pub jwt: Option<JwtConfig>,
}

/// A basic auth user with a password hash (argon2 `$argon2id$…` or bcrypt `$2b$…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password_hash: String,
}

/// The `x-ditto-pre-authenticated` header (`issuer:subject`, comma-separated for several): off
/// by default, and taken only from the listed addresses when on.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreAuthenticated {
    pub enabled: bool,
    /// Peer addresses allowed to set the header.
    pub trusted: Vec<IpAddr>,
}

impl Default for PreAuthenticated {
    fn default() -> Self {
        PreAuthenticated {
            enabled: false,
            trusted: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16]),
            ],
        }
    }
}

/// JSON Web Token verification: the keys, what the token must say, and which claim names the
/// subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS document (a file) with the issuer's public keys.
    pub jwks_file: Option<PathBuf>,
    /// A shared secret for HS256 tokens (development and tests).
    pub hs256_secret: Option<String>,
    /// The `iss` a token must carry.
    pub issuer: Option<String>,
    /// An `aud` the token must carry.
    pub audience: Option<String>,
    /// The subject a token authenticates as: `{{ jwt:<claim> }}` placeholders in a pattern,
    /// as Ditto's `subject-issuers` configuration [default: `jwt:{{ jwt:sub }}`].
    #[serde(default = "default_subject_pattern")]
    pub subject: String,
    /// The subject `activateTokenIntegration` injects (`{{ policy-entry:label }}` and
    /// `{{ jwt:<claim> }}` placeholders), as Ditto's `token-integration-subject`.
    #[serde(default = "default_token_integration_subject")]
    pub token_integration_subject: String,
}

pub fn default_token_integration_subject() -> String {
    "integration:{{policy-entry:label}}:{{jwt:aud}}".to_owned()
}

fn default_subject_pattern() -> String {
    "jwt:{{ jwt:sub }}".to_owned()
}

/// Bounds that protect the broker from large or many clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest request body or WebSocket message, in bytes.
    pub max_message_bytes: usize,
    /// WebSocket sessions served at once.
    pub max_websocket_sessions: usize,
    /// Signals queued for one WebSocket or SSE client before events to it are dropped.
    pub session_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: twinwire_protocol::DEFAULT_MAX_ENVELOPE_BYTES,
            max_websocket_sessions: 10_000,
            session_queue: 1_024,
        }
    }
}

/// The twin engine's sizing (see `EngineConfig`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    pub shards: usize,
    pub max_things_in_memory: usize,
    pub snapshot_every: u64,
    pub policy_lockout_prevention: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        let engine = twinwire_core::things::EngineConfig::default();
        EngineSettings {
            shards: engine.shards,
            max_things_in_memory: engine.max_things_in_memory,
            snapshot_every: engine.snapshot_every,
            policy_lockout_prevention: engine.policy_rules.lockout_prevention,
        }
    }
}

impl EngineSettings {
    pub fn engine_config(&self) -> twinwire_core::things::EngineConfig {
        let mut config = twinwire_core::things::EngineConfig {
            shards: self.shards,
            max_things_in_memory: self.max_things_in_memory,
            snapshot_every: self.snapshot_every,
            ..Default::default()
        };
        config.policy_rules.lockout_prevention = self.policy_lockout_prevention;
        config
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        source: yaml_serde::Error,
    },
}

impl Config {
    /// Reads a `twinwire.yaml`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|source| ConfigError::Yaml {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses the text of a `twinwire.yaml`; an empty text is the defaults.
    pub fn parse(text: &str) -> Result<Config, yaml_serde::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        yaml_serde::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_need_no_file() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.auth.users.is_empty());
        assert!(!config.auth.pre_authenticated.enabled);
        assert_eq!(config.limits.session_queue, 1_024);
    }

    #[test]
    fn the_documented_file_is_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/twinwire.yaml");
        let documented = Config::load(Path::new(path)).unwrap();
        let defaults = Config::default();
        assert_eq!(documented.listen, defaults.listen);
        assert_eq!(
            documented.auth.pre_authenticated.trusted,
            defaults.auth.pre_authenticated.trusted
        );
        assert_eq!(
            documented.auth.pre_authenticated.enabled,
            defaults.auth.pre_authenticated.enabled
        );
        assert_eq!(
            documented.limits.max_message_bytes,
            defaults.limits.max_message_bytes
        );
        assert_eq!(
            documented.limits.max_websocket_sessions,
            defaults.limits.max_websocket_sessions
        );
        assert_eq!(
            documented.limits.session_queue,
            defaults.limits.session_queue
        );
        assert_eq!(documented.engine.shards, defaults.engine.shards);
        assert_eq!(
            documented.engine.max_things_in_memory,
            defaults.engine.max_things_in_memory
        );
        assert_eq!(
            documented.engine.snapshot_every,
            defaults.engine.snapshot_every
        );
        assert_eq!(
            documented.engine.policy_lockout_prevention,
            defaults.engine.policy_lockout_prevention
        );
    }

    #[test]
    fn settings_are_read_and_typos_refused() {
        let config = Config::parse(
            "listen: 0.0.0.0:9000\nauth:\n  users:\n    - name: alice\n      password_hash: x\nlimits:\n  session_queue: 8\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.auth.users[0].name, "alice");
        assert_eq!(config.limits.session_queue, 8);
        let error = Config::parse("limits:\n  sesion_queue: 8\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("sesion_queue") && text.contains("line 2"),
            "{text}"
        );
    }
}
