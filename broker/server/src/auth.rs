//! Who a request is: HTTP basic auth against configured users (subject `nginx:<user>`, as
//! Ditto's default nginx setup gives), the `x-ditto-pre-authenticated` header from trusted
//! proxies, or a verified JSON Web Token. No credentials, or wrong ones, are Ditto's 401
//! `gateway:authentication.failed`.
//!
//! Password hashes are slow by design (argon2 takes tens of milliseconds), so a verified
//! `Authorization` value is remembered in a bounded cache: only the first request of a client
//! pays for the hash.

use crate::config::AuthConfig;
use base64::Engine as _;
use lru::LruCache;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use twinwire_core::auth::AuthContext;
use twinwire_protocol::exceptions::gateway;
use twinwire_protocol::DittoError;

/// Who a request is: its subjects, and the claims of the JWT it authenticated with, if any.
#[derive(Debug, Clone)]
pub struct Caller {
    pub auth: AuthContext,
    pub jwt: Option<Arc<Map<String, Value>>>,
}

impl From<AuthContext> for Caller {
    fn from(auth: AuthContext) -> Self {
        Caller { auth, jwt: None }
    }
}

/// The header a trusted proxy names the authenticated subjects in.
pub const PRE_AUTHENTICATED_HEADER: &str = "x-ditto-pre-authenticated";

/// Verified `Authorization` values remembered.
const CACHE: usize = 4_096;

/// How requests are authenticated; shared by every request.
pub struct Authenticator {
    /// User name → password hash.
    users: HashMap<String, String>,
    pre_authenticated: Option<Vec<IpAddr>>,
    jwt: Option<crate::jwt::JwtVerifier>,
    verified: Mutex<LruCache<String, AuthContext>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("Authenticator")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("pre_authenticated", &self.pre_authenticated)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// Why the authentication setup is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("user {0}: the password hash is neither argon2 ($argon2…) nor bcrypt ($2…)")]
    Hash(String),
    #[error("user name {0:?}: only letters, digits, '-', '_' and '.' are allowed")]
    Name(String),
    #[error("jwt: {0}")]
    Jwt(String),
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let mut users = HashMap::new();
        for user in &config.users {
            let valid_name = !user.name.is_empty()
                && user
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_name {
                return Err(AuthSetupError::Name(user.name.clone()));
            }
            let hash = &user.password_hash;
            if !(hash.starts_with("$argon2") || hash.starts_with("$2")) {
                return Err(AuthSetupError::Hash(user.name.clone()));
            }
            users.insert(user.name.clone(), hash.clone());
        }
        let jwt = config
            .jwt
            .as_ref()
            .map(crate::jwt::JwtVerifier::new)
            .transpose()
            .map_err(AuthSetupError::Jwt)?;
        Ok(Authenticator {
            users,
            pre_authenticated: config
                .pre_authenticated
                .enabled
                .then(|| config.pre_authenticated.trusted.clone()),
            jwt,
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
        })
    }

    /// Whether any way to authenticate is configured.
    pub fn has_any(&self) -> bool {
        !self.users.is_empty() || self.pre_authenticated.is_some() || self.jwt.is_some()
    }

    /// Whether basic auth is configured (a 401 then names it in `WWW-Authenticate`).
    pub fn accepts_basic(&self) -> bool {
        !self.users.is_empty()
    }

    /// Authenticates a request from its `Authorization` and `x-ditto-pre-authenticated`
    /// headers and the peer's address.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        pre_authenticated: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Caller, DittoError> {
        if let (Some(trusted), Some(subjects)) = (&self.pre_authenticated, pre_authenticated) {
            let from_trusted = peer.is_some_and(|p| trusted.iter().any(|t| same_ip(*t, p)));
            if from_trusted {
                let subjects: Vec<&str> = subjects.split(',').map(str::trim).collect();
                return AuthContext::new(subjects).map(Caller::from).map_err(|_| {
                    gateway::authentication_failed("The pre-authenticated subjects are invalid.")
                });
            }
            tracing::warn!(
                ?peer,
                "x-ditto-pre-authenticated from an untrusted address ignored"
            );
        }
        let Some(authorization) = authorization else {
            return Err(if self.jwt.is_some() && self.users.is_empty() {
                gateway::jwt_missing()
            } else {
                gateway::authentication_failed("Unauthorized.")
            });
        };
        if let Some(auth) = self.cached(authorization) {
            return Ok(auth.into());
        }
        let (scheme, credentials) = authorization.split_once(' ').unwrap_or((authorization, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            // Tokens expire: they are verified every time, never remembered.
            let jwt = self
                .jwt
                .as_ref()
                .ok_or_else(|| gateway::authentication_failed("Unauthorized."))?;
            let (auth, claims) = jwt.verify_claims(credentials.trim())?;
            return Ok(Caller {
                auth,
                jwt: Some(Arc::new(claims)),
            });
        }
        if !scheme.eq_ignore_ascii_case("basic") || self.users.is_empty() {
            return Err(gateway::authentication_failed("Unauthorized."));
        }
        let auth = self.basic(credentials.trim())?;
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(authorization.to_owned(), auth.clone());
        Ok(auth.into())
    }

    fn cached(&self, authorization: &str) -> Option<AuthContext> {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(authorization)
            .cloned()
    }

    fn basic(&self, credentials: &str) -> Result<AuthContext, DittoError> {
        let refused = || gateway::authentication_failed("Unauthorized.");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| refused())?;
        let decoded = String::from_utf8(decoded).map_err(|_| refused())?;
        let (name, password) = decoded.split_once(':').ok_or_else(refused)?;
        let hash = self.users.get(name).ok_or_else(refused)?;
        if !verify_password(password, hash) {
            return Err(refused());
        }
        AuthContext::new([format!("nginx:{name}")]).map_err(|_| refused())
    }
}

/// `::ffff:127.0.0.1` and `127.0.0.1` are the same peer.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Verifies a password against an argon2 or bcrypt hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

/// Hashes a password with argon2id (for `--user NAME:PASSWORD` and the development user).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    // 16 random bytes (a v4 UUID's come from the OS's generator) as the salt.
    let Ok(salt) = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()) else {
        return String::new();
    };
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;

    fn basic(user: &str, password: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    }

    fn with_user(name: &str, hash: String) -> Authenticator {
        let config = AuthConfig {
            users: vec![User {
                name: name.into(),
                password_hash: hash,
            }],
            ..AuthConfig::default()
        };
        Authenticator::new(&config).unwrap()
    }

    #[test]
    fn basic_auth_with_argon2_and_bcrypt() {
        let auth = with_user("alice", hash_password("s3cret"));
        let ok = auth
            .authenticate(Some(&basic("alice", "s3cret")), None, None)
            .unwrap();
        assert_eq!(ok.auth.first(), Some("nginx:alice"));
        // Cached: the same again.
        assert!(auth
            .authenticate(Some(&basic("alice", "s3cret")), None, None)
            .is_ok());
        let wrong = auth
            .authenticate(Some(&basic("alice", "nope")), None, None)
            .unwrap_err();
        assert_eq!(
            (wrong.status, wrong.code()),
            (401, "gateway:authentication.failed")
        );
        assert!(auth
            .authenticate(Some(&basic("bob", "s3cret")), None, None)
            .is_err());
        assert!(auth.authenticate(Some("Basic !!!"), None, None).is_err());
        assert!(auth.authenticate(None, None, None).is_err());
        let bcrypt_hash = bcrypt::hash("pw", 4).unwrap();
        let auth = with_user("carol", bcrypt_hash);
        assert!(auth
            .authenticate(Some(&basic("carol", "pw")), None, None)
            .is_ok());
    }

    #[test]
    fn unusable_setups_are_refused() {
        let config = AuthConfig {
            users: vec![User {
                name: "x".into(),
                password_hash: "plaintext".into(),
            }],
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authenticator::new(&config),
            Err(AuthSetupError::Hash(_))
        ));
    }

    #[test]
    fn pre_authenticated_only_from_trusted_peers() {
        let mut config = AuthConfig::default();
        config.pre_authenticated.enabled = true;
        let auth = Authenticator::new(&config).unwrap();
        let local = Some(IpAddr::from([127, 0, 0, 1]));
        let got = auth
            .authenticate(None, Some("nginx:proxy-user"), local)
            .unwrap();
        assert_eq!(got.auth.first(), Some("nginx:proxy-user"));
        let remote = Some(IpAddr::from([10, 0, 0, 1]));
        assert!(auth
            .authenticate(None, Some("nginx:proxy-user"), remote)
            .is_err());
        // Off by default.
        let auth = Authenticator::new(&AuthConfig::default()).unwrap();
        assert!(auth
            .authenticate(None, Some("nginx:proxy-user"), local)
            .is_err());
    }
}
