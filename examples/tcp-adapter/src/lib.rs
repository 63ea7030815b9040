//! An example twinwire adapter plugin, written only against `twinwire-plugin`: connection type
//! `tcp-lines`, line-delimited JSON over a TCP client connection.
//!
//! The instance connects to the connection's `uri` (`tcp://host:port`) and keeps connecting
//! (with a doubling delay) for as long as it is open. On the wire, one JSON object per line (see
//! [`lines`]):
//!
//! - a line from the peer, `{"address": ..., "headers": {...}, "payload": "..."}`, is a consumed
//!   message; its settle token counts the messages consumed since the instance started (1, 2,
//!   3...), and its source is the one whose `addresses` list the line's address;
//! - when the broker settles it, the peer gets `{"settled": <token>, "outcome": "delivered" |
//!   "retryable" | "permanent"}`: an at-least-once peer resends what is not settled as delivered
//!   (a line whose connection was lost before its settlement included);
//! - what the broker publishes (targets, reply targets) goes to the peer as message lines; a send
//!   completes once its line was written and flushed.
//!
//! It reports `Connected` and `Disconnected` through [`Host::status`]; `close` shuts the socket
//! and joins its task. Everything runs on the plugin runtime the glue gives it.
//!
//! Build it with `cargo build -p twinwire-example-tcp-adapter` (the plugin is
//! `target/debug/libtwinwire_example_tcp_adapter.so`); `examples/connections/tcp-lines.yaml` is a
//! connection that uses it.

pub mod config;
pub mod lines;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Delivery, Host, LogLevel, Message, Outcome, Plugin,
    Receipt, SendError,
};

pub use config::Config;

/// A line to write to the peer, and who waits for it to be written.
struct Write {
    /// The line, newline included.
    line: String,
    done: Option<oneshot::Sender<Result<(), SendError>>>,
}

impl Write {
    fn new(line: String, done: Option<oneshot::Sender<Result<(), SendError>>>) -> Write {
        let mut line = line;
        line.push('\n');
        Write { line, done }
    }

    fn finish(self, result: Result<(), SendError>) {
        if let Some(done) = self.done {
            let _ = done.send(result);
        }
    }
}

/// A `tcp-lines` adapter instance.
pub struct TcpLines {
    host: Host,
    config: Arc<Config>,
    writes: mpsc::UnboundedSender<Write>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl TcpLines {
    /// Starts an instance: its task connects, reads and writes until [`Adapter::close`].
    /// Needs a tokio runtime (the plugin runtime, when loaded through the ABI).
    pub fn start(config: Config, host: Host) -> TcpLines {
        let config = Arc::new(config);
        let (writes, queue) = mpsc::unbounded_channel();
        let (shutdown, stop) = watch::channel(false);
        host.status(
            ConnectionStatus::Disconnected,
            &format!("connecting to {}", config.address),
        );
        let task = tokio::spawn(run(
            host.clone(),
            Arc::clone(&config),
            queue,
            writes.clone(),
            stop,
        ));
        TcpLines {
            host,
            config,
            writes,
            shutdown,
            task: Mutex::new(Some(task)),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

#[async_trait]
impl Adapter for TcpLines {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        let line = lines::encode_message(&message).map_err(SendError::Rejected)?;
        let (done, written) = oneshot::channel();
        self.writes
            .send(Write::new(line, Some(done)))
            .map_err(|_| SendError::Closed)?;
        let written = written.await.unwrap_or_else(|_| {
            Err(SendError::Retryable(
                "the connection ended before the line was written".to_owned(),
            ))
        });
        written.map(|()| Receipt::default())
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        // Written in order with everything else; lost with the connection (the peer then counts
        // the message as unsettled).
        let _ = self
            .writes
            .send(Write::new(lines::settled_line(settle_token, outcome), None));
    }

    async fn close(&self) {
        self.shutdown.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                self.host
                    .log(LogLevel::Error, &format!("tcp-lines: the task failed: {e}"));
            }
        }
    }
}

#[async_trait]
impl Plugin for TcpLines {
    const NAME: &'static str = "tcp-lines";
    const CONNECTION_TYPES: &'static [&'static str] = &["tcp-lines"];

    async fn create(config: &[u8], host: Host) -> Result<Self, String> {
        Ok(TcpLines::start(Config::from_json(config)?, host))
    }
}

twinwire_plugin::export_adapter!(TcpLines);

/// Why a connection to the peer ended.
enum Ended {
    /// The instance is closing.
    Shutdown,
    /// Lost; the text says why.
    Lost(String),
}

/// The instance's task: connect, serve, reconnect, until shut down.
async fn run(
    host: Host,
    config: Arc<Config>,
    mut queue: mpsc::UnboundedReceiver<Write>,
    writes: mpsc::UnboundedSender<Write>,
    mut stop: watch::Receiver<bool>,
) {
    // Settle tokens go on across reconnections: a token names one consumed line for ever.
    let mut tokens = 0u64;
    let mut delay = config.reconnect_delay;
    loop {
        let attempt = tokio::time::timeout(
            config.connect_timeout,
            TcpStream::connect(config.address.as_str()),
        );
        let connected = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            connected = attempt => connected,
        };
        let why = match connected {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                delay = config.reconnect_delay;
                host.status(
                    ConnectionStatus::Connected,
                    &format!("connected to {}", config.address),
                );
                let (read, write) = stream.into_split();
                let ended = tokio::select! {
                    ended = write_lines(write, &mut queue, &mut stop) => ended,
                    ended = read_lines(read, &host, &config, &mut tokens, &writes) => ended,
                };
                match ended {
                    Ended::Shutdown => break,
                    Ended::Lost(why) => why,
                }
            }
            Ok(Err(e)) => format!("cannot connect to {}: {e}", config.address),
            Err(_) => format!(
                "cannot connect to {} within {:?}",
                config.address, config.connect_timeout
            ),
        };
        host.status(ConnectionStatus::Disconnected, &why);
        if wait_disconnected(&config, delay, &mut queue, &mut stop).await {
            break;
        }
        delay = (delay * 2).min(config::MAX_RECONNECT_DELAY);
    }
    host.status(ConnectionStatus::Disconnected, "closed");
}

/// Waits `delay` before the next attempt, failing sends meanwhile; `true` if shut down.
async fn wait_disconnected(
    config: &Config,
    delay: Duration,
    queue: &mut mpsc::UnboundedReceiver<Write>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let pause = tokio::time::sleep(delay);
    tokio::pin!(pause);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return true,
            () = &mut pause => return false,
            write = queue.recv() => match write {
                Some(write) => write.finish(Err(SendError::Retryable(format!(
                    "not connected to {}", config.address
                )))),
                None => return true,
            },
        }
    }
}

/// Writes queued lines until the connection fails or the instance closes (then what is queued
/// still goes out, briefly, and the socket is shut).
async fn write_lines(
    mut write: OwnedWriteHalf,
    queue: &mut mpsc::UnboundedReceiver<Write>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    loop {
        let next = tokio::select! {
            biased;
            write = queue.recv() => write,
            _ = stop.wait_for(|stop| *stop) => None,
        };
        let Some(next) = next else {
            break;
        };
        let written = tokio::select! {
            biased;
            written = write_line(&mut write, &next.line) => written,
            // A peer that stops reading must not hold up close.
            _ = stop.wait_for(|stop| *stop) => {
                next.finish(Err(SendError::Closed));
                break;
            }
        };
        match written {
            Ok(()) => next.finish(Ok(())),
            Err(e) => {
                let why = format!("writing failed: {e}");
                next.finish(Err(SendError::Retryable(why.clone())));
                return Ended::Lost(why);
            }
        }
    }
    // Closing: no send or settle comes any more; flush what is queued (settle lines), shut.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(next) = queue.try_recv() {
            let written = write_line(&mut write, &next.line).await;
            let failed = written.is_err();
            next.finish(written.map_err(|e| SendError::Retryable(e.to_string())));
            if failed {
                break;
            }
        }
        let _ = write.shutdown().await;
    })
    .await;
    Ended::Shutdown
}

async fn write_line(write: &mut OwnedWriteHalf, line: &str) -> std::io::Result<()> {
    write.write_all(line.as_bytes()).await?;
    write.flush().await
}

/// Reads lines and delivers their messages until the connection fails.
async fn read_lines(
    read: OwnedReadHalf,
    host: &Host,
    config: &Config,
    tokens: &mut u64,
    writes: &mpsc::UnboundedSender<Write>,
) -> Ended {
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    let limit = config.max_line_bytes as u64 + 1;
    loop {
        buf.clear();
        match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
            Ok(0) => return Ended::Lost("the peer closed the connection".to_owned()),
            Ok(_) => {}
            Err(e) => return Ended::Lost(format!("reading failed: {e}")),
        }
        if buf.last() != Some(&b'\n') && buf.len() > config.max_line_bytes {
            return Ended::Lost(format!(
                "the peer sent a line longer than {} bytes",
                config.max_line_bytes
            ));
        }
        let line = match std::str::from_utf8(&buf) {
            Ok(line) => line.trim_end_matches(['\n', '\r']),
            Err(_) => {
                refuse(host, writes, "the line is not UTF-8");
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let message = match lines::decode_message(line, config) {
            Ok(message) => message,
            Err(reason) => {
                refuse(host, writes, &reason);
                continue;
            }
        };
        *tokens += 1;
        let token = *tokens;
        if !deliver(host, message, token).await {
            // The host is closing the connection: the peer may send it again later.
            let line = lines::settled_line(token, Outcome::Retryable);
            let _ = writes.send(Write::new(line, None));
        }
    }
}

/// Hands a message to the host, waiting while it answers backpressure; `false` if refused.
async fn deliver(host: &Host, message: Message, token: u64) -> bool {
    let mut wait = Duration::from_millis(1);
    loop {
        match host.deliver(message.clone(), token) {
            Delivery::Accepted => return true,
            Delivery::Refused => return false,
            Delivery::Backpressure => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
        }
    }
}

fn refuse(host: &Host, writes: &mpsc::UnboundedSender<Write>, reason: &str) {
    host.log(
        LogLevel::Warn,
        &format!("tcp-lines: refused a line from the peer: {reason}"),
    );
    let _ = writes.send(Write::new(lines::refused_line(reason), None));
}
