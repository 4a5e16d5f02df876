//! The three id types, as shared text. Made only by [`crate::ids`], which checks them.
//!
//! An id is copied into every event and view that names it, so it is an
//! `Arc<str>`: a copy is a reference count, not a new string.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        // Equality, order and hash are the text's (`Arc<str>` forwards them to
        // `str`), so maps keyed by an id can be searched with a `&str`.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) Arc<str>);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
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
    OrgId
);
id_type!(
    /// An AI agent inside an org. Agents need no registration.
    AgentId
);
id_type!(
    /// An operator-defined tier of limit and burst that orgs are put on.
    PlanId
);
id_type!(
    /// One conversation. Unique within its org; the same id in two orgs names two calls.
    CallId
);

/// A map keyed by ids: std's `HashMap` with foldhash in place of SipHash.
/// Every command hashes its org id and call id, and a profile of
/// acquire+release on a busy org put SipHash at about a sixth of the time.
/// foldhash is seeded per map, as hashbrown's default hasher is.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
