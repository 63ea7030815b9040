//! The authorization context every signal carries (docs/basic-auth.md): the subjects it acts as,
//! e.g. `nginx:ditto`, `integration:my-connection`, `pre-authenticated:x`. Policies grant and
//! revoke permissions to these subjects; the first one is the one a default policy names.

use std::fmt;
use std::sync::Arc;

/// The subjects a command acts as, in the order given. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthContext {
    subjects: Arc<[String]>,
    /// No policy is checked: local administration (`twinwire pipe --unrestricted`) only, never
    /// a network client.
    unrestricted: bool,
}

/// Why a subject ID is refused: it must be `issuer:subject`, both parts non-empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authorization subject '{0}' is not of the form issuer:subject")]
pub struct InvalidSubject(pub String);

impl AuthContext {
    /// A context of the given subjects, each `issuer:subject`.
    pub fn new<I, S>(subjects: I) -> Result<Self, InvalidSubject>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let subjects: Vec<String> = subjects.into_iter().map(Into::into).collect();
        if let Some(bad) = subjects.iter().find(|s| !is_subject_id(s)) {
            return Err(InvalidSubject(bad.clone()));
        }
        Ok(AuthContext {
            subjects: subjects.into(),
            unrestricted: false,
        })
    }

    /// No subjects: for the engine's own internal requests, which no policy grants anything.
    pub fn none() -> Self {
        AuthContext {
            subjects: Arc::from(Vec::<String>::new()),
            unrestricted: false,
        }
    }

    /// The same subjects with every policy check skipped: for local administration (bulk
    /// import, repair, Ditto's generated examples that assume no enforcement), never for a
    /// client of the network.
    pub fn unrestricted(self) -> Self {
        AuthContext {
            unrestricted: true,
            ..self
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }

    /// The subjects as `&str`, for enforcer checks.
    pub fn subject_refs(&self) -> Vec<&str> {
        self.subjects.iter().map(String::as_str).collect()
    }

    /// The first subject: the one a default policy grants, the command's `ditto-originator`.
    pub fn first(&self) -> Option<&str> {
        self.subjects.first().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }
}

impl fmt::Display for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subjects.join(","))
    }
}

/// `issuer:subject` with both parts non-empty and no whitespace or control characters.
pub fn is_subject_id(s: &str) -> bool {
    matches!(s.split_once(':'), Some((issuer, subject)) if !issuer.is_empty() && !subject.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_issuer_and_subject() {
        let ctx = AuthContext::new(["nginx:ditto", "integration:conn:1"]).unwrap();
        assert_eq!(ctx.first(), Some("nginx:ditto"));
        assert_eq!(ctx.to_string(), "nginx:ditto,integration:conn:1");
        for bad in ["ditto", ":x", "x:", "a b:c", ""] {
            assert!(AuthContext::new([bad]).is_err(), "{bad}");
        }
    }
}
