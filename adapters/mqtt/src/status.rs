//! The instance's connection status, from its sessions (one client, or a consumer and a
//! separate publisher): connected when every session is.

use std::sync::{Mutex, PoisonError};

use twinwire_plugin::{ConnectionStatus, Host};

/// The sessions' states, reported to the host as one.
pub struct StatusBoard {
    host: Host,
    sessions: Mutex<Vec<(String, bool)>>,
}

impl StatusBoard {
    pub fn new(host: Host) -> StatusBoard {
        StatusBoard {
            host,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// Session `name` is (not) connected, for the reason `detail`.
    pub fn set(&self, name: &str, connected: bool, detail: &str) {
        let all = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            match sessions.iter_mut().find(|(n, _)| n == name) {
                Some(session) => session.1 = connected,
                None => sessions.push((name.to_owned(), connected)),
            }
            sessions.iter().all(|(_, c)| *c)
        };
        let status = if all {
            ConnectionStatus::Connected
        } else {
            ConnectionStatus::Disconnected
        };
        self.host.status(status, &format!("{name}: {detail}"));
    }
}
