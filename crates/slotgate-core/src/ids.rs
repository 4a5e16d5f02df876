//! Validated identifiers: org, agent and call ids, and the one check of their format.
//!
//! An id is 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (API.md). A value of
//! one of these types has passed that check, so the rest of the engine never
//! checks again. The types themselves are plain shared text (`id.rs`); this
//! module is the only way to make one from outside the crate.

use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};
pub use crate::id::{AgentId, CallId, OrgId, PlanId};

/// The longest id accepted, in characters (all of them ASCII).
pub use slotgate_api::limits::MAX_ID_LEN;

/// Checks `s` against the id alphabet and length; `field` names it in the
/// error. The API's one check of an id (`slotgate_api::limits::check_id`).
pub fn validate_id(field: &'static str, s: &str) -> Result<()> {
    Ok(slotgate_api::limits::check_id(field, s)?)
}

macro_rules! checked {
    ($name:ident, $field:literal) => {
        impl $name {
            /// Validates `s` and makes an id of it.
            pub fn new(s: &str) -> Result<Self> {
                validate_id($field, s)?;
                Ok(Self(Arc::from(s)))
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }
    };
}

checked!(OrgId, "org");
checked!(AgentId, "agent");
checked!(CallId, "id");
checked!(PlanId, "plan");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_id_alphabet() {
        for ok in ["a", "CA123", "agent-a", "x.y_z:1-2", &"a".repeat(128)] {
            assert_eq!(CallId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn short_and_long_ids_compare_hash_and_read_as_their_text() {
        use std::collections::HashMap;
        let uuid = "0b3f2a9e-5c1d-4e8f-9a7b-1c2d3e4f5a6b";
        let long = "x".repeat(MAX_ID_LEN);
        let ids: Vec<CallId> = [uuid, &long, "a"]
            .iter()
            .map(|s| CallId::new(s).unwrap())
            .collect();
        let map: HashMap<CallId, usize> = ids.iter().cloned().zip(0..).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id.as_str()), Some(&i), "found by its text");
        }
        let mut sorted = ids.clone();
        sorted.sort();
        let sorted: Vec<&str> = sorted.iter().map(CallId::as_str).collect();
        assert_eq!(sorted, [uuid, "a", long.as_str()]);
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        for bad in ["", " ", "a b", "a/b", "é", "a\n", &"a".repeat(129)] {
            let err = AgentId::new(bad).unwrap_err();
            assert!(
                matches!(err, Error::Invalid { field: "agent", .. }),
                "{bad:?}: {err}"
            );
        }
    }
}
