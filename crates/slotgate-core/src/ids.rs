//! Validated identifiers: org, agent and call ids.
//!
//! An id is 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (API.md). A value of
//! one of these types has passed that check, so the rest of the engine never
//! checks again. Ids are reference counted: events and views clone them often.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The longest id accepted, in characters (all of them ASCII).
pub const MAX_ID_LEN: usize = 128;

/// Checks `s` against the id alphabet and length; `field` names it in the error.
pub fn validate_id(field: &'static str, s: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if s.is_empty() || s.len() > MAX_ID_LEN {
        let got = s.chars().count();
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_ID_LEN} characters, got {got}"),
        ));
    }
    // Every allowed character is one byte, so a byte scan decides; chars only name the culprit.
    if s.bytes().all(|b| allowed(char::from(b))) {
        return Ok(());
    }
    let bad = s
        .chars()
        .find(|&c| !allowed(c))
        .expect("a byte was refused, so a character is");
    Err(Error::invalid(
        field,
        format!("may only hold A-Z a-z 0-9 . _ : - (found {bad:?})"),
    ))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s` and makes an id of it.
            pub fn new(s: &str) -> Result<Self> {
                validate_id($field, s)?;
                Ok(Self(Arc::from(s)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
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
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
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
