//! Validated identifiers: org, agent and call ids.
//!
//! An id is 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (API.md). A value of
//! one of these types has passed that check, so the rest of the engine never
//! checks again. Events and views copy ids often, so an id of up to
//! [`INLINE_ID_LEN`] characters (a UUID, a telephony call SID) is kept inline
//! and copied without touching the heap or an atomic count; a longer one is
//! shared behind an `Arc`.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use arrayvec::ArrayString;

use crate::error::{Error, Result};

/// The longest id accepted, in characters (all of them ASCII).
pub use slotgate_api::limits::MAX_ID_LEN;

/// The longest id kept inline, in characters: a UUID is 36.
pub const INLINE_ID_LEN: usize = 40;

/// Checks `s` against the id alphabet and length; `field` names it in the
/// error. The API's one check of an id (`slotgate_api::limits::check_id`).
pub fn validate_id(field: &'static str, s: &str) -> Result<()> {
    Ok(slotgate_api::limits::check_id(field, s)?)
}

/// An id's text: inline up to [`INLINE_ID_LEN`], shared beyond.
#[derive(Clone)]
enum Text {
    Inline(ArrayString<INLINE_ID_LEN>),
    Shared(Arc<str>),
}

impl Text {
    fn new(s: &str) -> Text {
        match ArrayString::from(s) {
            Ok(inline) => Text::Inline(inline),
            Err(_) => Text::Shared(Arc::from(s)),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Text::Inline(s) => s,
            Text::Shared(s) => s,
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Text);

        impl $name {
            /// Validates `s` and makes an id of it.
            pub fn new(s: &str) -> Result<Self> {
                validate_id($field, s)?;
                Ok(Self(Text::new(s)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        // Equality, order and hash are the text's, so that maps keyed by an
        // id can be searched with a `&str` (see `Borrow`).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }
    };
}

id_type!(
    /// A tenant: it owns one pool of `limit` slots.
    OrgId,
    "org"
);
id_type!(
    /// An AI agent inside an org. Agents need no registration.
    AgentId,
    "agent"
);
id_type!(
    /// One conversation. Unique within its org; the same id in two orgs names two calls.
    CallId,
    "id"
);

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
        assert!(matches!(ids[0].0, Text::Inline(_)), "a UUID is inline");
        assert!(
            matches!(ids[1].0, Text::Shared(_)),
            "128 characters are shared"
        );
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
