//! JSON Web Token verification for `Authorization: Bearer`: the signature against a JWKS
//! document's keys (RS*, ES*, PS*, EdDSA, by `kid`) or a shared HS256 secret, the expiry, and
//! the configured issuer and audience; then the subjects from the configured pattern, whose
//! `{{ jwt:<claim> }}` placeholders take the claims' values (an array claim gives one subject
//! per element, as Ditto's `subject-issuers` do).

use crate::config::JwtConfig;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use twinwire_core::auth::AuthContext;
use twinwire_protocol::exceptions::gateway;
use twinwire_protocol::DittoError;

pub struct JwtVerifier {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    subject: String,
}

enum Keys {
    Jwks(JwkSet),
    Secret(Vec<u8>),
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> Result<Self, String> {
        let keys = match (&config.jwks_file, &config.hs256_secret) {
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| format!("{} is not a JWKS document: {e}", path.display()))?;
                Keys::Jwks(set)
            }
            (None, Some(secret)) if !secret.is_empty() => Keys::Secret(secret.as_bytes().to_vec()),
            _ => return Err("set exactly one of jwks_file and hs256_secret".into()),
        };
        if !config.subject.contains("{{") {
            return Err(format!(
                "subject pattern {:?} names no claim ({{{{ jwt:sub }}}})",
                config.subject
            ));
        }
        Ok(JwtVerifier {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            subject: config.subject.clone(),
        })
    }

    /// The subjects a valid token authenticates as.
    pub fn verify(&self, token: &str) -> Result<AuthContext, DittoError> {
        self.verify_claims(token).map(|(auth, _)| auth)
    }

    /// The subjects a valid token authenticates as, and its claims (for policy actions).
    pub fn verify_claims(
        &self,
        token: &str,
    ) -> Result<(AuthContext, Map<String, Value>), DittoError> {
        let invalid = |e: &dyn std::fmt::Display| gateway::jwt_invalid(&e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        let (key, algorithm) = match &self.keys {
            Keys::Secret(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
            Keys::Jwks(set) => {
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid),
                    None => set.keys.first(),
                }
                .ok_or_else(|| invalid(&"no key of the JWKS matches the token's kid"))?;
                (
                    DecodingKey::from_jwk(jwk).map_err(|e| invalid(&e))?,
                    header.alg,
                )
            }
        };
        if header.alg != algorithm || matches!(header.alg, Algorithm::HS384 | Algorithm::HS512) {
            return Err(invalid(&format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| invalid(&e))?
            .claims;
        let subjects = subjects(&self.subject, &claims)
            .ok_or_else(|| invalid(&"the token lacks a claim the subject pattern names"))?;
        let auth = AuthContext::new(subjects).map_err(|e| invalid(&e))?;
        Ok((auth, claims))
    }
}

/// The subjects a pattern gives for the claims: every combination of the values of the claims
/// it names (an array claim gives one subject per element).
fn subjects(pattern: &str, claims: &Map<String, Value>) -> Option<Vec<String>> {
    resolve(pattern, claims, |_| None)
}

/// A pattern's `{{ jwt:<claim> }}` placeholders resolved from the claims, every combination of
/// their values; other placeholders from `other` (`policy-entry:label` → its value).
pub fn resolve(
    pattern: &str,
    claims: &Map<String, Value>,
    other: impl Fn(&str) -> Option<String>,
) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}")? + start;
        let placeholder = rest[start + 2..end].trim();
        let claim = match placeholder.strip_prefix("jwt:") {
            Some(name) => claims.get(name.trim())?.clone(),
            None => Value::from(other(placeholder)?),
        };
        let values: Vec<String> = match claim {
            Value::String(s) => vec![s],
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Value::Number(n) => vec![n.to_string()],
            _ => return None,
        };
        if values.is_empty() {
            return None;
        }
        let prefix = &rest[..start];
        out = out
            .iter()
            .flat_map(|done| values.iter().map(move |v| format!("{done}{prefix}{v}")))
            .collect();
        rest = &rest[end + 2..];
    }
    Some(out.into_iter().map(|s| format!("{s}{rest}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn verifier(subject: &str) -> JwtVerifier {
        JwtVerifier::new(&JwtConfig {
            jwks_file: None,
            hs256_secret: Some("test-secret".into()),
            issuer: Some("https://issuer.example".into()),
            audience: None,
            subject: subject.into(),
            token_integration_subject: crate::config::default_token_integration_subject(),
        })
        .unwrap()
    }

    fn token(claims: Value, secret: &str) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn a_valid_token_gives_its_subjects() {
        let v = verifier("jwt:{{ jwt:sub }}");
        let t = token(
            json!({"sub": "alice", "iss": "https://issuer.example", "exp": in_an_hour()}),
            "test-secret",
        );
        assert_eq!(v.verify(&t).unwrap().first(), Some("jwt:alice"));
        let v = verifier("{{ jwt:iss }}:{{ jwt:groups }}");
        let t = token(
            json!({"groups": ["a", "b"], "iss": "https://issuer.example", "exp": in_an_hour()}),
            "test-secret",
        );
        let auth = v.verify(&t).unwrap();
        assert_eq!(auth.subjects().len(), 2);
    }

    #[test]
    fn bad_tokens_are_refused() {
        let v = verifier("jwt:{{ jwt:sub }}");
        let claims = json!({"sub": "alice", "iss": "https://issuer.example", "exp": in_an_hour()});
        for bad in [
            token(claims.clone(), "other-secret"),
            token(
                json!({"sub": "alice", "iss": "https://issuer.example", "exp": 1}),
                "test-secret",
            ),
            token(
                json!({"sub": "alice", "iss": "https://evil.example", "exp": in_an_hour()}),
                "test-secret",
            ),
            token(
                json!({"iss": "https://issuer.example", "exp": in_an_hour()}),
                "test-secret",
            ),
            "not-a-token".to_owned(),
        ] {
            let error = v.verify(&bad).unwrap_err();
            assert_eq!(
                (error.status, error.code()),
                (401, "gateway:jwt.invalid"),
                "{bad}"
            );
        }
    }
}
