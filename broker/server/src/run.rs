//! `twinwire run`: the broker. Opens the journal, starts the engine and router, serves the
//! HTTP API (and WebSocket and SSE) until SIGINT or SIGTERM, then stops accepting, lets the
//! requests in flight finish, and flushes the journal.

use crate::auth::{hash_password, AuthSetupError, Authenticator};
use crate::config::{Config, User};
use crate::http::{self, AppState};
use axum_server::tls_rustls::RustlsConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use twinwire_core::connections::plugins::Plugins;
use twinwire_core::connections::supervisor::{Backoff, Supervisor};
use twinwire_core::journal::{Journal, JournalConfig, JournalError, RedbStore};
use twinwire_core::routing::Router;

/// How long requests in flight may take to finish after a shutdown began (TLS listener).
const GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How often the connection directory is looked at for changes.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Where adapter plugins are looked for without `--plugins`: `plugins/` beside the binary.
pub fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("plugins")))
        .unwrap_or_else(|| PathBuf::from("plugins"))
}

/// The namespace of things created without an ID.
pub const DEFAULT_NAMESPACE: &str = "org.eclipse.ditto";

/// Why the broker could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open the data directory {dir}: {source}")]
    DataDir { dir: PathBuf, source: JournalError },
    #[error("authentication: {0}")]
    Auth(#[from] AuthSetupError),
    #[error("--user {0:?}: expected NAME:PASSWORD")]
    UserFlag(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("TLS: cannot use the certificate {certificate} and key {key}: {source}")]
    Tls {
        certificate: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal did not flush on shutdown: {0}")]
    Flush(JournalError),
}

/// A running broker: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    /// Whether it serves HTTPS and WSS.
    pub tls: bool,
    /// Credentials of the development user, when no authentication was configured.
    pub development_user: Option<(String, String)>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Result<(), RunError>>,
}

impl Running {
    /// Stops accepting, waits for the requests in flight, flushes the journal.
    pub async fn stop(self) -> Result<(), RunError> {
        let _ = self.stop.send(());
        self.done.await.unwrap_or(Ok(()))
    }

    /// Waits until the broker stopped on SIGINT or SIGTERM.
    pub async fn wait(self) -> Result<(), RunError> {
        let Running { stop, done, .. } = self;
        let result = done.await.unwrap_or(Ok(()));
        drop(stop);
        result
    }
}

/// Adds `--user NAME:PASSWORD` users (hashed here, kept only as hashes).
pub fn add_flag_users(config: &mut Config, users: &[String]) -> Result<(), RunError> {
    for user in users {
        let (name, password) = user
            .split_once(':')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| RunError::UserFlag(user.split(':').next().unwrap_or("").to_owned()))?;
        config.auth.users.push(User {
            name: name.to_owned(),
            password_hash: hash_password(password),
        });
    }
    Ok(())
}

/// Starts the broker; it runs until [`Running::stop`] or, with `signals`, SIGINT or SIGTERM.
pub async fn start(mut config: Config, signals: bool) -> Result<Running, RunError> {
    // Before anything records a metric.
    let _ = crate::http::operations::prometheus();
    let data_dir = config
        .data_dir
        .clone()
        .unwrap_or_else(crate::pipe::default_data_dir);
    let store = RedbStore::open(&data_dir).map_err(|source| RunError::DataDir {
        dir: data_dir.clone(),
        source,
    })?;
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).map_err(|source| {
        RunError::DataDir {
            dir: data_dir.clone(),
            source,
        }
    })?;
    let mut development_user = None;
    let configured = Authenticator::new(&config.auth)?;
    if !configured.has_any() {
        let password = uuid::Uuid::new_v4().simple().to_string();
        config.auth.users.push(User {
            name: "dev".into(),
            password_hash: hash_password(&password),
        });
        development_user = Some(("dev".to_owned(), password));
    }
    let auth = Arc::new(Authenticator::new(&config.auth)?);
    let router = Router::start(journal, config.engine.engine_config());
    let connections = match &config.connections {
        None => None,
        Some(dir) => {
            let plugin_dir = config.plugins.clone().unwrap_or_else(default_plugin_dir);
            let plugins = Plugins::load_dir(&plugin_dir);
            tracing::info!(dir = %dir.display(), plugins = ?plugins.types(), "connections");
            let supervisor = Supervisor::new(router.clone(), plugins.factory(), Backoff::default());
            supervisor.watch(dir.clone(), WATCH_INTERVAL);
            Some(supervisor)
        }
    };
    let state = AppState {
        router: router.clone(),
        auth,
        limits: config.limits.clone(),
        default_namespace: Arc::from(DEFAULT_NAMESPACE),
        sessions: Arc::default(),
        connections: connections.clone(),
        token_integration_subject: Arc::from(
            config
                .auth
                .jwt
                .as_ref()
                .map(|j| j.token_integration_subject.clone())
                .unwrap_or_else(crate::config::default_token_integration_subject),
        ),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(RunError::Serve)?;
    let tls = match &config.tls {
        None => None,
        Some(tls) => {
            // One crypto provider for the process; a second install is a no-op error.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls = RustlsConfig::from_pem_file(&tls.certificate, &tls.private_key)
                .await
                .map_err(|source| RunError::Tls {
                    certificate: tls.certificate.clone(),
                    key: tls.private_key.clone(),
                    source,
                })?;
            Some(rustls)
        }
    };
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let shutdown = async move {
            if signals {
                tokio::select! {
                    _ = stopped => {}
                    () = terminated() => tracing::info!("signal received, shutting down"),
                }
            } else {
                let _ = stopped.await;
            }
        };
        let served = match tls {
            None => axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(RunError::Serve),
            Some(rustls) => {
                let handle = axum_server::Handle::new();
                let stopping = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    stopping.graceful_shutdown(Some(GRACE));
                });
                match listener.into_std() {
                    Ok(listener) => axum_server::from_tcp_rustls(listener, rustls)
                        .handle(handle)
                        .serve(app)
                        .await
                        .map_err(RunError::Serve),
                    Err(e) => Err(RunError::Serve(e)),
                }
            }
        };
        let flushed = router
            .engine()
            .clone()
            .shutdown()
            .await
            .map_err(RunError::Flush);
        served.and(flushed)
    });
    Ok(Running {
        addr,
        tls: config.tls.is_some(),
        development_user,
        stop,
        done,
    })
}

/// SIGINT or SIGTERM.
async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
