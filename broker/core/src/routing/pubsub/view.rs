//! What a subscriber may see of a published signal, by kind, as Ditto's enforcement marks who
//! may read it (things `ThingCommandEnforcement` and `LiveSignalEnforcement`, the
//! `readGrantedSubjects` every subscriber is checked against in gateway `StreamingSessionActor`
//! and connectivity `SignalFilter`). Pure: no I/O.
//!
//! - Twin and live events: [`event_view`], the event with its value cut to the readable parts
//!   (Ditto's partial-access events), nothing when nothing is readable.
//! - Live commands: whole, to subjects with READ on `thing:<path>`.
//! - Live messages: whole, to subjects with READ on `message:<path>`.
//!
//!   Ditto hands both to the subjects its enforcer lists as granted READ at the path, which
//!   disregards revokes below it; twinwire asks for READ on the path and everything below
//!   ([`Enforcer::has_permission`]), which is the same unless something below is revoked, and
//!   then errs towards not delivering.
//! - Policy announcements: to the subjects the announcement names (`value.subjectIds`); Ditto
//!   publishes them to those subjects' topics, with no policy check.
//! - Connection announcements: only to the announcing connection's own subscribers (whose
//!   [`SubscriberId::origin`] is the connection ID, the topic's entity name); Ditto's client
//!   actor sends them straight to its targets.
//!
//! A thing signal without an enforcer (the policy is gone or does not compile) reaches nobody;
//! an unrestricted context (local administration) sees everything whole.

use super::subscription::{Kind, SubscriberId};
use crate::auth::AuthContext;
use crate::policies::enforcer::{Enforcer, Permission};
use crate::things::enforce::event_view;
use serde_json::Value;
use twinwire_protocol::Envelope;

/// The signal as the subscriber `id`, acting as `auth`, may receive it; `None` for nothing.
pub(super) fn visible(
    kind: Kind,
    enforcer: Option<&Enforcer>,
    id: &SubscriberId,
    auth: &AuthContext,
    signal: &Envelope,
) -> Option<Envelope> {
    match kind {
        Kind::TwinEvents | Kind::LiveEvents => event_view(enforcer?, auth, signal),
        Kind::LiveCommands => readable_whole(enforcer?, auth, "thing", signal),
        Kind::LiveMessages => readable_whole(enforcer?, auth, "message", signal),
        Kind::PolicyAnnouncements => {
            addressed_to(auth, signal.value.as_ref()).then(|| signal.clone())
        }
        Kind::ConnectionAnnouncements => (id.origin() == signal.topic.name).then(|| signal.clone()),
    }
}

fn readable_whole(
    enforcer: &Enforcer,
    auth: &AuthContext,
    resource_type: &str,
    signal: &Envelope,
) -> Option<Envelope> {
    let may_read = auth.is_unrestricted()
        || enforcer.has_permission(
            auth.subjects(),
            resource_type,
            &signal.path,
            Permission::Read,
        );
    may_read.then(|| signal.clone())
}

/// Whether a subject deletion announcement names one of the subscriber's subjects.
fn addressed_to(auth: &AuthContext, value: Option<&Value>) -> bool {
    if auth.is_unrestricted() {
        return true;
    }
    let Some(Value::Array(ids)) = value.and_then(|v| v.get("subjectIds")) else {
        return false;
    };
    ids.iter()
        .filter_map(Value::as_str)
        .any(|id| auth.subjects().iter().any(|s| s == id))
}
