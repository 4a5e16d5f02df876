//! This replica's role: whether it may answer from its memory, and where
//! requests go when it may not. Published on a watch, apart from the
//! store's health (`store::Health`): the store says whether it commits,
//! the role says who leads.

use std::time::Instant;

use tokio::sync::watch;

/// What this server is to the others on its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One server on its own store (the embedded store): it always leads.
    Single,
    /// It leads in `term`, and may answer from memory until `until` (its
    /// last renewal plus `lease::LEAD_VALID`), when its lead may be
    /// another's soon.
    Leading {
        /// The term, as the leader row holds it.
        term: i64,
        /// Until when its lead is surely its own.
        until: Instant,
    },
    /// Another replica leads: requests go to it.
    Following(Leader),
    /// Nobody leads that this replica knows of (the database is out of
    /// reach, or the lead lapsed and is not taken yet).
    Unknown,
}

/// The replica that leads, as the leader row names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Where it serves: its `--advertise-url`.
    pub url: String,
    /// Its term, written with the URL when it took the lead: it proves it
    /// leads in this term before a follower forwards to it.
    pub term: i64,
}

impl Role {
    /// Whether this server may answer from its memory now (the store must
    /// commit too).
    pub fn serves(&self) -> bool {
        match self {
            Role::Single => true,
            Role::Leading { until, .. } => Instant::now() < *until,
            Role::Following(_) | Role::Unknown => false,
        }
    }

    /// The term it leads in, while [`Role::serves`]; `None` for a single
    /// server (no term) and while it does not lead.
    pub fn term(&self) -> Option<i64> {
        match self {
            Role::Leading { term, .. } if self.serves() => Some(*term),
            _ => None,
        }
    }

    /// Whether `other` is the same role, leaving aside how long a lead lasts.
    fn same(&self, other: &Role) -> bool {
        match (self, other) {
            (Role::Leading { term: a, .. }, Role::Leading { term: b, .. }) => a == b,
            (Role::Following(a), Role::Following(b)) => a == b,
            (Role::Single, Role::Single) | (Role::Unknown, Role::Unknown) => true,
            _ => false,
        }
    }

    /// The replica requests go to, while another leads.
    pub fn leader(&self) -> Option<&Leader> {
        match self {
            Role::Following(leader) => Some(leader),
            _ => None,
        }
    }
}

/// Where replication publishes the role; the service watches it.
#[derive(Debug)]
pub struct Publisher {
    tx: watch::Sender<Role>,
}

impl Publisher {
    /// A publisher starting at `role`.
    pub fn new(role: Role) -> Self {
        Publisher {
            tx: watch::channel(role).0,
        }
    }

    /// The role, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.tx.subscribe()
    }

    /// The role now.
    pub fn get(&self) -> Role {
        self.tx.borrow().clone()
    }

    /// Publishes `role`. Watchers are woken only when what it is changes,
    /// not when a lead is merely renewed (a later `until`): a renewal comes
    /// with every commit.
    pub fn set(&self, role: Role) {
        self.tx.send_if_modified(|now| {
            let news = !now.same(&role);
            *now = role;
            news
        });
    }
}

/// The role of a single server, for ever: nothing publishes another (its
/// watchers find the channel closed, and wait for nothing).
pub fn single() -> watch::Receiver<Role> {
    watch::channel(Role::Single).1
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_renewal_wakes_nobody_a_new_term_does() {
        let publisher = Publisher::new(Role::Unknown);
        let mut role = publisher.subscribe();
        let until = Instant::now() + Duration::from_secs(3);
        publisher.set(Role::Leading { term: 4, until });
        assert!(role.has_changed().expect("the publisher lives"));
        role.borrow_and_update();
        publisher.set(Role::Leading {
            term: 4,
            until: until + Duration::from_secs(1),
        });
        assert!(!role.has_changed().expect("the publisher lives"));
        assert_eq!(role.borrow().term(), Some(4));
        publisher.set(Role::Leading { term: 5, until });
        assert!(role.has_changed().expect("the publisher lives"));
    }

    #[test]
    fn a_lapsed_lead_serves_nothing() {
        let lapsed = Role::Leading {
            term: 2,
            until: Instant::now(),
        };
        assert!(!lapsed.serves());
        assert_eq!(lapsed.term(), None);
        assert!(Role::Single.serves());
        assert_eq!(Role::Single.term(), None);
    }
}
