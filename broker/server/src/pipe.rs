//! `twinwire pipe`: Ditto Protocol commands in as JSON lines, and for each, in input order, its
//! response (or error response) and then the events it caused out as JSON lines. Each answer
//! leaves only once what it reports is durable. The twin engine's first surface for scripting,
//! bulk import and debugging.
//!
//! Reading, executing and writing overlap: commands are handed to their shards in input order
//! (so one thing's commands apply in order) while earlier ones are still being persisted.

use crate::input::{messages, Format, Item};
use serde_json::Value;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::things::{EngineConfig, Submitted, ThingEngine};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{
    DittoError, Envelope, Headers, JsonPointer, ProtocolError, Topic, DEFAULT_MAX_ENVELOPE_BYTES,
};

/// The subject `twinwire pipe` acts as without `--subject`.
pub const DEFAULT_SUBJECT: &str = "pre-authenticated:twinwire-pipe";

/// Commands read but not yet answered. Bounds memory when stdin is faster than the disk.
const IN_FLIGHT: usize = 4096;

/// What `twinwire pipe` needs to run.
#[derive(Debug, Clone)]
pub struct PipeOptions {
    pub data_dir: PathBuf,
    /// The authorization subjects the commands act as; the first is their `ditto-originator`.
    pub auth: AuthContext,
    /// Ditto's policy lockout prevention: refuse a policy no subject may write.
    pub policy_lockout_prevention: bool,
}

/// Why the pipe stopped before its input ended.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("cannot open the data directory {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: twinwire_core::journal::JournalError,
    },
    #[error("cannot read the input: {0}")]
    Input(io::Error),
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error("the journal did not flush on exit: {0}")]
    Flush(twinwire_core::journal::JournalError),
}

/// The default data directory: `$XDG_DATA_HOME/twinwire`, else `~/.local/share/twinwire`,
/// else `./twinwire-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("twinwire");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/twinwire"),
        None => PathBuf::from("twinwire-data"),
    }
}

/// Runs the pipe over `input` and `output` until the input ends and every answer is written.
pub async fn run<R, W>(input: R, output: W, options: PipeOptions) -> Result<(), PipeError>
where
    R: BufRead + Send + 'static,
    W: Write + Send + 'static,
{
    let store = RedbStore::open(&options.data_dir).map_err(|source| PipeError::DataDir {
        dir: options.data_dir.clone(),
        source,
    })?;
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).map_err(|source| {
        PipeError::DataDir {
            dir: options.data_dir.clone(),
            source,
        }
    })?;
    let mut config = EngineConfig::default();
    config.policy_rules.lockout_prevention = options.policy_lockout_prevention;
    let engine = ThingEngine::start(journal, config);

    // The splitter blocks on stdin: it runs on a thread of its own.
    let (items, mut item_inbox) = mpsc::channel::<io::Result<Item>>(IN_FLIGHT);
    let reader = tokio::task::spawn_blocking(move || {
        for item in messages(input, Format::Json, DEFAULT_MAX_ENVELOPE_BYTES) {
            if items.blocking_send(item).is_err() {
                break;
            }
        }
    });
    let (answers, answer_inbox) = mpsc::channel::<Answer>(IN_FLIGHT);
    let writer = tokio::spawn(write_answers(answer_inbox, output));

    let mut read_error = None;
    while let Some(item) = item_inbox.recv().await {
        let answer = match item {
            Ok(Item::Message(bytes)) => match Envelope::from_slice(&bytes) {
                Ok(mut envelope) => {
                    envelope.headers.strip_internal_from_client();
                    if let Some(subject) = options.auth.first() {
                        envelope.headers.insert(names::DITTO_ORIGINATOR, subject);
                    }
                    Answer::Pending(engine.submit(envelope, &options.auth).await)
                }
                Err(e) => Answer::Refused(Box::new(refusal(&bytes, &e.into()))),
            },
            Ok(Item::TooLarge { size }) => {
                let error = ProtocolError::TooLarge {
                    size,
                    max: DEFAULT_MAX_ENVELOPE_BYTES,
                };
                Answer::Refused(Box::new(refusal(&[], &error.into())))
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        if answers.send(answer).await.is_err() {
            break;
        }
    }
    drop(answers);
    let written = writer.await.unwrap_or_else(|e| Err(io::Error::other(e)));
    let _ = reader.await;
    engine.shutdown().await.map_err(PipeError::Flush)?;
    written.map_err(PipeError::Output)?;
    match read_error {
        Some(e) => Err(PipeError::Input(e)),
        None => Ok(()),
    }
}

enum Answer {
    Pending(Submitted),
    /// Boxed: refusals are rare, and every answer in flight would carry their room.
    Refused(Box<Envelope>),
}

/// Writes answers in input order, each once it is durable; flushes whenever it catches up, so an
/// interactive user sees every answer at once.
async fn write_answers<W: Write>(mut answers: mpsc::Receiver<Answer>, output: W) -> io::Result<()> {
    let mut out = io::BufWriter::new(output);
    while let Some(answer) = answers.recv().await {
        match answer {
            Answer::Refused(envelope) => writeln!(out, "{}", envelope.to_json_string())?,
            Answer::Pending(submitted) => {
                let executed = submitted.await;
                match executed.durable.await {
                    Ok(()) => {
                        writeln!(out, "{}", executed.response.to_json_string())?;
                        for event in &executed.events {
                            writeln!(out, "{}", event.to_json_string())?;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a change did not reach the journal");
                        let thing = executed.response.topic.entity_id();
                        writeln!(
                            out,
                            "{}",
                            executed
                                .response
                                .error_response(&exc::thing_unavailable(&thing))
                                .to_json_string()
                        )?;
                    }
                }
            }
        }
        if answers.is_empty() {
            out.flush()?;
        }
    }
    out.flush()
}

/// The error response to input that is not a valid command, addressed as well as the input
/// allows: its topic and correlation-id if they can be read, else `_/_/things/twin/errors`.
fn refusal(bytes: &[u8], error: &DittoError) -> Envelope {
    let raw: Option<Value> = serde_json::from_slice(bytes).ok();
    let topic = raw
        .as_ref()
        .and_then(|v| v.get("topic"))
        .and_then(Value::as_str)
        .and_then(|t| Topic::parse(t).ok())
        .unwrap_or_else(|| Topic {
            namespace: twinwire_protocol::id::WILDCARD.into(),
            name: twinwire_protocol::id::WILDCARD.into(),
            group: Group::Things,
            channel: Channel::Twin,
            criterion: Criterion::Commands(CommandAction::Modify),
        });
    let mut headers = Headers::new();
    if let Some(id) = raw
        .as_ref()
        .and_then(|v| v.pointer("/headers/correlation-id"))
        .and_then(Value::as_str)
    {
        headers.insert(names::CORRELATION_ID, id);
    }
    Envelope::new(topic, headers, JsonPointer::root()).error_response(error)
}
