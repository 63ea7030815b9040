//! Handing events on once durable, in order. Each thing shard has one publisher task: the shard
//! queues every change with a promise of its durability, and the task waits for those promises
//! in queue order, so a thing's events reach the [`EventSink`] in revision order and never before
//! they are on disk, whichever order the callers of the engine await their answers in.

use crate::policies::enforcers::Compiled;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::Envelope;

/// A durable change of one thing, as the sink receives it.
#[derive(Debug)]
pub struct ThingChange {
    /// The change's events, in order.
    pub events: Vec<Envelope>,
    /// The policy the change was enforced with: who may read the events.
    pub policy: Option<Arc<Compiled>>,
    /// The thing as it is after the events, while extra fields are wanted
    /// ([`ThingEngine::set_thing_after_events`](super::ThingEngine::set_thing_after_events)).
    pub thing: Option<Arc<Value>>,
}

/// Who receives what the engine publishes: the router's pub/sub. Called from the engine's
/// tasks; must not block.
pub trait EventSink: Send + Sync + 'static {
    /// A thing changed and the change is durable.
    fn thing_changed(&self, change: ThingChange);

    /// A policy announcement (`…/policies/announcements/subjectDeletion`) to publish, and to
    /// publish again until acknowledged when it requests acknowledgements.
    fn policy_announcement(self: Arc<Self>, announcement: Envelope);
}

/// A change waiting for its durability.
pub(super) struct Queued {
    pub(super) change: ThingChange,
    pub(super) durable: oneshot::Receiver<bool>,
}

/// Starts a shard's publisher task; the shard sends to the returned queue. A full queue makes
/// the shard wait: publishing pushes back like the journal does.
pub(super) fn spawn(sink: Arc<dyn EventSink>, capacity: usize) -> mpsc::Sender<Queued> {
    let (sender, mut queue) = mpsc::channel::<Queued>(capacity.max(1));
    tokio::spawn(async move {
        while let Some(Queued { change, durable }) = queue.recv().await {
            // Not durable (the journal failed): the change is not the state, and publishing it
            // would tell subscribers of something a restart undoes.
            if durable.await == Ok(true) {
                sink.thing_changed(change);
            }
        }
    });
    sender
}
