//! Events on the wire: every state change of an org, with its org-wide `seq`.

use serde::{Deserialize, Serialize};

use crate::resources::Time;
use crate::types::{BlockedReason, CallType, Caps, EndReason, PerType, Slot, Source};

/// One state change of an org (`GET .../events`, the SSE stream).
///
/// On the wire one flat object: `seq`, `org`, `at`, its `type` and that
/// kind's fields. Its OpenAPI schema says so (see `openapi` below): one
/// object per kind, in a `oneOf` discriminated by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Org-wide, increasing from 1 with no gaps.
    pub seq: u64,
    /// The org it happened in.
    pub org: String,
    /// When it happened.
    pub at: Time,
    /// What happened; its name is the event's `type`.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, by the event's `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum EventKind {
    /// The org exists with this limit.
    #[serde(rename = "org.created")]
    OrgCreated {
        /// Its limit.
        limit: u32,
        /// The id of the key that made it (null for the operator).
        by: Option<String>,
    },
    /// A call arrived and had to wait.
    #[serde(rename = "call.queued")]
    CallQueued {
        /// The call.
        call: String,
        /// Its agent.
        agent: String,
        /// Its type.
        call_type: CallType,
        /// Its position on arrival.
        position: u64,
        /// Its expected wait on arrival, in seconds; null with too little
        /// history (as the call's `estimated_wait_s`).
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(minimum = 0))]
        estimated_wait_s: Option<f64>,
        /// Its lease length, in ms.
        lease_ttl_ms: u64,
        /// When its `max_wait` runs out, if it has one.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        max_wait_expires_at: Option<Time>,
        /// Why it can never be admitted as the org is configured now; null if it can.
        #[serde(default)]
        blocked: Option<BlockedReason>,
    },
    /// A call took a slot.
    #[serde(rename = "call.admitted")]
    CallAdmitted {
        /// The call.
        call: String,
        /// Its agent.
        agent: String,
        /// Its type.
        call_type: CallType,
        /// The part of the pool it took.
        slot: Slot,
        /// How long it waited in the queue (0 when admitted on arrival).
        waited_ms: u64,
        /// Its lease length, in ms.
        lease_ttl_ms: u64,
    },
    /// A call ended, once and for all.
    #[serde(rename = "call.ended")]
    CallEnded {
        /// The call.
        call: String,
        /// Its agent.
        agent: String,
        /// Its type.
        call_type: CallType,
        /// Why.
        reason: EndReason,
    },
    /// A heartbeat gave a live call another lease length (`lease_ttl_s`);
    /// its lease, or its hold in the queue, runs that long from then on.
    #[serde(rename = "call.lease_changed")]
    CallLeaseChanged {
        /// The call.
        call: String,
        /// Its agent.
        agent: String,
        /// Its type.
        call_type: CallType,
        /// Its new lease length, in ms.
        lease_ttl_ms: u64,
    },
    /// The org's limit changed.
    #[serde(rename = "org.limit_changed")]
    LimitChanged {
        /// The limit before.
        old: u32,
        /// The limit now.
        new: u32,
        /// The id of the key that changed it (null for the operator).
        by: Option<String>,
    },
    /// The org's burst changed.
    #[serde(rename = "org.burst_changed")]
    BurstChanged {
        /// The burst before.
        old: u32,
        /// The burst now.
        new: u32,
        /// The id of the key that changed it (null for the operator).
        by: Option<String>,
    },
    /// The org's plan changed, or where its limit or burst comes from (its
    /// plan's or its own). The limit and burst it changed follow as
    /// `org.limit_changed` and `org.burst_changed`.
    #[serde(rename = "org.plan_changed")]
    PlanChanged {
        /// The plan before (null: none).
        old: Option<String>,
        /// The plan now (null: none).
        new: Option<String>,
        /// Where its limit comes from now.
        limit_source: Source,
        /// Where its burst comes from now.
        burst_source: Source,
        /// The id of the key that changed it (null for the operator).
        by: Option<String>,
    },
    /// An agent's caps changed.
    #[serde(rename = "agent.caps_changed")]
    CapsChanged {
        /// The agent.
        agent: String,
        /// Its caps before.
        old: Caps,
        /// Its caps now.
        new: Caps,
        /// The id of the key that changed them (null for the operator).
        by: Option<String>,
    },
    /// A configuration change blocked or unblocked queued calls: how many are blocked now.
    #[serde(rename = "org.blocked_changed")]
    BlockedChanged {
        /// Blocked queued calls before the change.
        old: u32,
        /// Blocked queued calls now.
        new: u32,
    },
    /// An agent's reservations changed.
    #[serde(rename = "agent.reservations_changed")]
    ReservationsChanged {
        /// The agent.
        agent: String,
        /// Its reservations before.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::types::PerTypeSchema))]
        old: PerType<u32>,
        /// Its reservations now.
        #[cfg_attr(feature = "openapi", schema(value_type = crate::types::PerTypeSchema))]
        new: PerType<u32>,
        /// The id of the key that changed them (null for the operator).
        by: Option<String>,
    },
}

impl EventKind {
    /// The event's `type`, e.g. `call.admitted`.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::OrgCreated { .. } => "org.created",
            EventKind::CallQueued { .. } => "call.queued",
            EventKind::CallAdmitted { .. } => "call.admitted",
            EventKind::CallEnded { .. } => "call.ended",
            EventKind::CallLeaseChanged { .. } => "call.lease_changed",
            EventKind::LimitChanged { .. } => "org.limit_changed",
            EventKind::ReservationsChanged { .. } => "agent.reservations_changed",
            EventKind::BurstChanged { .. } => "org.burst_changed",
            EventKind::PlanChanged { .. } => "org.plan_changed",
            EventKind::CapsChanged { .. } => "agent.caps_changed",
            EventKind::BlockedChanged { .. } => "org.blocked_changed",
        }
    }

    /// The call it is about, for `call.*` events.
    pub fn call(&self) -> Option<&str> {
        match self {
            EventKind::CallQueued { call, .. }
            | EventKind::CallAdmitted { call, .. }
            | EventKind::CallEnded { call, .. }
            | EventKind::CallLeaseChanged { call, .. } => Some(call),
            _ => None,
        }
    }
}

/// `GET /v1/orgs/{org}/events`: a page of events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// The events.
    pub events: Vec<Event>,
    /// The `after` of the next request.
    pub next: u64,
}

/// The OpenAPI schema of [`Event`]: each kind as one object (its `type`, its
/// own fields, and `seq`, `org`, `at`), named after its type
/// (`call.admitted`: `CallAdmittedEvent`), in a `oneOf` with a discriminator
/// on `type`. Client generators make one class per kind from it; an `allOf`
/// of the kinds' `oneOf` and the common fields is beyond most of them.
#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{Discriminator, OneOfBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Event, EventKind};

    /// The fields every event has besides its kind's.
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Common {
        /// Org-wide, increasing from 1 with no gaps.
        seq: u64,
        /// The org it happened in.
        org: String,
        /// When it happened.
        #[schema(value_type = String, format = DateTime)]
        at: String,
    }

    /// Each kind of event: its component's name, its `type`, its schema.
    fn kinds() -> Vec<(String, String, Schema)> {
        let RefOr::T(Schema::OneOf(kinds)) = EventKind::schema() else {
            unreachable!("EventKind is tagged by `type`: a oneOf of objects")
        };
        let RefOr::T(Schema::Object(common)) = Common::schema() else {
            unreachable!("Common is a struct: an object")
        };
        kinds
            .items
            .into_iter()
            .map(|kind| {
                let RefOr::T(Schema::Object(mut object)) = kind else {
                    unreachable!("each kind of a tagged enum is an object")
                };
                let tag = match object.properties.get("type") {
                    Some(RefOr::T(Schema::Object(t))) => t
                        .enum_values
                        .iter()
                        .flatten()
                        .find_map(|v| v.as_str())
                        .map(str::to_string),
                    _ => None,
                }
                .expect("each kind has its `type` as a one-value enum");
                object.properties.extend(common.properties.clone());
                object.required.extend(common.required.iter().cloned());
                (component_name(&tag), tag, Schema::Object(object))
            })
            .collect()
    }

    /// `call.admitted` -> `CallAdmittedEvent`.
    fn component_name(tag: &str) -> String {
        let words = tag.split(['.', '_']).map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        });
        words.collect::<String>() + "Event"
    }

    impl PartialSchema for Event {
        fn schema() -> RefOr<Schema> {
            let mut discriminator = Discriminator::new("type");
            let mut one_of = OneOfBuilder::new().description(Some(
                "One state change of an org (`GET .../events`, the SSE stream), by its `type`.",
            ));
            for (name, tag, _) in kinds() {
                one_of = one_of.item(Ref::from_schema_name(&name));
                discriminator
                    .mapping
                    .insert(tag, format!("#/components/schemas/{name}"));
            }
            Schema::OneOf(one_of.discriminator(Some(discriminator)).build()).into()
        }
    }

    impl ToSchema for Event {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Event")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.extend(kinds().into_iter().map(|(name, _, s)| (name, s.into())));
            // What the kinds refer to (call types, slots, reasons, counts per type).
            EventKind::schemas(schemas);
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn each_kind_is_named_after_its_type() {
            assert_eq!(super::component_name("call.admitted"), "CallAdmittedEvent");
            assert_eq!(
                super::component_name("agent.reservations_changed"),
                "AgentReservationsChangedEvent"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_flat_object_tagged_by_its_type() {
        let e = Event {
            seq: 7,
            org: "acme".into(),
            at: "2026-11-23T20:00:00.123Z".into(),
            kind: EventKind::CallAdmitted {
                call: "c1".into(),
                agent: "sales".into(),
                call_type: CallType::Chat,
                slot: Slot::Reserved,
                waited_ms: 1500,
                lease_ttl_ms: 30_000,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "seq": 7, "org": "acme", "type": "call.admitted", "at": "2026-11-23T20:00:00.123Z",
                "call": "c1", "agent": "sales", "call_type": "chat", "slot": "reserved",
                "waited_ms": 1500, "lease_ttl_ms": 30_000,
            })
        );
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }

    #[test]
    fn a_new_lease_length_is_a_call_event() {
        let json = r#"{"seq": 9, "org": "acme", "type": "call.lease_changed", "at": "t",
            "call": "c1", "agent": "sales", "call_type": "chat", "lease_ttl_ms": 600000}"#;
        let e: Event = serde_json::from_str(json).unwrap();
        assert_eq!(
            e.kind,
            EventKind::CallLeaseChanged {
                call: "c1".into(),
                agent: "sales".into(),
                call_type: CallType::Chat,
                lease_ttl_ms: 600_000,
            }
        );
        assert_eq!(
            (e.kind.name(), e.kind.call()),
            ("call.lease_changed", Some("c1"))
        );
    }

    #[test]
    fn configuration_events_carry_who_made_them() {
        let json = r#"{"seq": 2, "org": "acme", "type": "org.limit_changed", "at": "t", "old": 5, "new": 9, "by": "k1"}"#;
        let e: Event = serde_json::from_str(json).unwrap();
        assert_eq!(
            e.kind,
            EventKind::LimitChanged {
                old: 5,
                new: 9,
                by: Some("k1".into())
            }
        );
        assert_eq!(e.kind.name(), "org.limit_changed");
    }
}
