//! A thing's state (docs/basic-thing.md, docs/basic-feature.md): its JSON as written, and the
//! bookkeeping Ditto exposes as `_revision`, `_created`, `_modified` and `_metadata`. Changed only
//! by applying events, so that a live thing and one recovered from the journal are the same.
//! No I/O here.

use super::event::ThingEvent;
use super::json;
use serde_json::{Map, Value};
use twinwire_protocol::topic::EventAction;
use twinwire_protocol::ThingId;

/// What a shard keeps for one thing ID: the last revision and, unless it never existed or was
/// deleted, the thing. Revisions go on counting across a delete and a re-create.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingEntity {
    pub id: ThingId,
    pub revision: u64,
    pub thing: Option<Thing>,
}

/// An existing thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Thing {
    /// `thingId`, `policyId`, `definition`, `attributes`, `features`, in the order written.
    pub json: Map<String, Value>,
    /// `_created` and `_modified`, ISO-8601.
    pub created: String,
    pub modified: String,
    /// `_metadata`, set through the `put-metadata` header.
    pub metadata: Option<Value>,
}

impl ThingEntity {
    pub fn new(id: ThingId) -> Self {
        ThingEntity {
            id,
            revision: 0,
            thing: None,
        }
    }

    pub fn exists(&self) -> bool {
        self.thing.is_some()
    }

    /// The entity tag of the thing's current state, `"rev:N"` with its quotes.
    pub fn etag(&self) -> String {
        format!("\"rev:{}\"", self.revision)
    }

    /// Applies one event. Events come from this thing's own commands or from the journal, so
    /// they are trusted to fit; an event that does not (a corrupt journal) leaves the JSON as
    /// close to it as it can get and never panics.
    pub fn apply(&mut self, event: &ThingEvent) {
        self.revision = event.revision;
        let at_root = event.path.is_root();
        match (event.action, at_root) {
            (EventAction::Deleted, true) => self.thing = None,
            (EventAction::Created | EventAction::Modified, true) => {
                let json = match &event.value {
                    Some(Value::Object(o)) => o.clone(),
                    _ => Map::new(),
                };
                let created = match (&self.thing, event.action) {
                    (Some(t), EventAction::Modified) => t.created.clone(),
                    _ => event.timestamp.clone(),
                };
                let metadata = self.thing.as_ref().and_then(|t| t.metadata.clone());
                self.thing = Some(Thing {
                    json,
                    created,
                    modified: event.timestamp.clone(),
                    metadata,
                });
            }
            (action, _) => {
                let Some(thing) = self.thing.as_mut() else {
                    return;
                };
                thing.modified = event.timestamp.clone();
                match action {
                    EventAction::Created | EventAction::Modified => {
                        json::set(
                            &mut thing.json,
                            &event.path,
                            event.value.clone().unwrap_or(Value::Null),
                        );
                    }
                    EventAction::Deleted => {
                        json::remove(&mut thing.json, &event.path);
                        // Deleting a part of a thing deletes its metadata too.
                        if let Some(Value::Object(m)) = thing.metadata.as_mut() {
                            json::remove(m, &event.path);
                        }
                    }
                    EventAction::Merged => json::merge_at(
                        &mut thing.json,
                        &event.path,
                        event.value.as_ref().unwrap_or(&Value::Null),
                    ),
                    EventAction::Migrated => {
                        if let Some(patch) = &event.value {
                            json::merge_at(&mut thing.json, &event.path, patch);
                        }
                    }
                }
            }
        }
        if let (Some(thing), Some(metadata)) = (self.thing.as_mut(), &event.metadata) {
            let mut current = thing.metadata.take().unwrap_or(Value::Object(Map::new()));
            json::merge_patch(&mut current, metadata);
            thing.metadata = Some(current);
        }
    }
}

impl ThingEntity {
    /// The journal snapshot of this entity: the thing (or `null` when deleted) with its
    /// bookkeeping. The revision is the snapshot's key, not repeated here.
    pub fn snapshot_data(&self) -> Vec<u8> {
        let thing = match &self.thing {
            None => Value::Null,
            Some(t) => {
                let mut o = Map::new();
                o.insert("json".into(), Value::Object(t.json.clone()));
                o.insert("created".into(), Value::from(t.created.as_str()));
                o.insert("modified".into(), Value::from(t.modified.as_str()));
                if let Some(m) = &t.metadata {
                    o.insert("metadata".into(), m.clone());
                }
                Value::Object(o)
            }
        };
        thing.to_string().into_bytes()
    }

    /// Rebuilds an entity from a snapshot written by [`ThingEntity::snapshot_data`].
    pub fn from_snapshot(
        id: ThingId,
        revision: u64,
        data: &[u8],
    ) -> Result<Self, serde_json::Error> {
        let thing = match serde_json::from_slice::<Value>(data)? {
            Value::Object(mut o) => Some(Thing {
                json: match o.remove("json") {
                    Some(Value::Object(j)) => j,
                    _ => Map::new(),
                },
                created: o
                    .get("created")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                modified: o
                    .get("modified")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                metadata: o.remove("metadata"),
            }),
            _ => None,
        };
        Ok(ThingEntity {
            id,
            revision,
            thing,
        })
    }
}

impl Thing {
    /// The thing's JSON, with the underscore fields added when a field selector asks for them.
    pub fn to_json(&self, revision: u64, with_special_fields: bool) -> Value {
        let mut json = self.json.clone();
        if with_special_fields {
            json.insert("_revision".into(), Value::from(revision));
            json.insert("_created".into(), Value::from(self.created.as_str()));
            json.insert("_modified".into(), Value::from(self.modified.as_str()));
            if let Some(m) = &self.metadata {
                json.insert("_metadata".into(), m.clone());
            }
        }
        Value::Object(json)
    }

    pub fn policy_id(&self) -> Option<&str> {
        self.json.get("policyId").and_then(Value::as_str)
    }
}
