//! Keys and roles: who may do what, in which org.
//!
//! Keys are bearer secrets. Only their SHA-256 is kept (in memory and on disk)
//! and hashes are compared in constant time. An org key reads
//! `sgk_<id>_<secret>`: the id is public (key lists show it, events name it),
//! the secret is shown once, at creation. The operator key is any string,
//! from `SLOTGATE_OPERATOR_KEY` or generated on first start.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use slotgate_core::{OrgId, Timestamp};
use subtle::ConstantTimeEq;

pub use slotgate_api::Role;

/// An org key as stored: never the secret, only its hash.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The key's public id.
    pub id: String,
    /// The org it belongs to.
    pub org: OrgId,
    /// A name for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
    /// When it was made.
    pub created_at: Timestamp,
    /// Its own rate limit, in requests per second; none: its org's, or its
    /// role's default (`limits.rs`).
    pub rate_per_s: Option<u32>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The operator: everything, everywhere.
    Operator,
    /// An org key.
    Org {
        /// The key's id.
        key_id: String,
        /// Its org.
        org: OrgId,
        /// Its role.
        role: Role,
    },
}

/// What a request wants to do in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the org, its agents, its events.
    Read,
    /// Acquire, read, heartbeat, release, list calls.
    Calls,
    /// Reservations and keys.
    Configure,
    /// Change the limit or the burst (the plan).
    SetLimit,
    /// Run plans and simulations, and read the observed traffic they start
    /// from: seconds of a core each, so not for runtime keys.
    Plan,
}

/// Why a principal may not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The org is not the key's: answered as if it did not exist.
    Hidden,
    /// The key's role does not allow it.
    Forbidden,
}

impl Principal {
    /// May this principal do `action` in `org`?
    pub fn check(&self, org: &str, action: Action) -> Result<(), Denied> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Org { org: own, role, .. } => {
                if own.as_str() != org {
                    return Err(Denied::Hidden);
                }
                let allowed = match role {
                    Role::Admin => action != Action::SetLimit,
                    Role::Runtime => matches!(action, Action::Read | Action::Calls),
                    // Sees `/metrics` only, which asks no org action.
                    Role::Metrics => false,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(Denied::Forbidden)
                }
            }
        }
    }

    /// The id of the key, for events (`by`).
    pub fn key_id(&self) -> &str {
        match self {
            Principal::Operator => "operator",
            Principal::Org { key_id, .. } => key_id,
        }
    }
}

/// SHA-256 of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes as hex, from the OS's CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex(&buf)
}

/// A new org key: its record and the secret to show once.
pub fn new_key(org: OrgId, name: String, role: Role, now: Timestamp) -> (KeyRecord, String) {
    let id = random_hex(8);
    let key = format!("sgk_{id}_{}", random_hex(24));
    let record = KeyRecord {
        id,
        org,
        name,
        role,
        hash: hash_key(&key),
        created_at: now,
        rate_per_s: None,
    };
    (record, key)
}

fn by_id(keys: Vec<KeyRecord>) -> HashMap<String, KeyRecord> {
    keys.into_iter().map(|k| (k.id.clone(), k)).collect()
}

/// The keys the server accepts.
#[derive(Debug)]
pub struct Keys {
    operator: [u8; 32],
    /// Org keys by id. `RwLock`: read on every request, written on key changes;
    /// never held across an await.
    org_keys: RwLock<HashMap<String, KeyRecord>>,
    /// Counts the times keys were taken away (revoked, or replaced by the
    /// stored ones), so open event streams and long-polls can end at once.
    removals: tokio::sync::watch::Sender<u64>,
}

impl Keys {
    /// The operator key's hash and the stored org keys.
    pub fn new(operator_key: &str, org_keys: Vec<KeyRecord>) -> Self {
        Keys {
            operator: hash_key(operator_key),
            org_keys: RwLock::new(by_id(org_keys)),
            removals: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Resolves once `p`'s key no longer works (revoked); never for the operator.
    pub async fn revoked(&self, p: &Principal) {
        let Principal::Org { key_id, .. } = p else {
            return std::future::pending().await;
        };
        let mut removals = self.removals.subscribe();
        loop {
            let gone = !self
                .org_keys
                .read()
                .expect("the keys lock is never poisoned")
                .contains_key(key_id);
            if gone || removals.changed().await.is_err() {
                return;
            }
        }
    }

    /// Who holds `token`, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let hash = hash_key(token);
        if bool::from(hash.ct_eq(&self.operator)) {
            return Some(Principal::Operator);
        }
        let id = token.strip_prefix("sgk_")?.split('_').next()?;
        let keys = self
            .org_keys
            .read()
            .expect("the keys lock is never poisoned");
        let record = keys.get(id)?;
        bool::from(hash.ct_eq(&record.hash)).then(|| Principal::Org {
            key_id: record.id.clone(),
            org: record.org.clone(),
            role: record.role,
        })
    }

    /// Replaces every org key with those stored (after the store failed).
    pub fn replace(&self, org_keys: Vec<KeyRecord>) {
        let mut keys = self
            .org_keys
            .write()
            .expect("the keys lock is never poisoned");
        *keys = by_id(org_keys);
        drop(keys);
        self.removals.send_modify(|n| *n += 1);
    }

    /// Adds a key (after it is durable).
    pub fn insert(&self, record: KeyRecord) {
        let mut keys = self
            .org_keys
            .write()
            .expect("the keys lock is never poisoned");
        keys.insert(record.id.clone(), record);
    }

    /// Revokes a key of `org`; false if it has no such key.
    pub fn remove(&self, org: &str, id: &str) -> bool {
        let mut keys = self
            .org_keys
            .write()
            .expect("the keys lock is never poisoned");
        if keys.get(id).is_some_and(|k| k.org.as_str() == org) {
            keys.remove(id);
            drop(keys);
            self.removals.send_modify(|n| *n += 1);
            return true;
        }
        false
    }

    /// The keys of an org, oldest first.
    pub fn of_org(&self, org: &str) -> Vec<KeyRecord> {
        let keys = self
            .org_keys
            .read()
            .expect("the keys lock is never poisoned");
        let mut list: Vec<KeyRecord> = keys
            .values()
            .filter(|k| k.org.as_str() == org)
            .cloned()
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list
    }

    /// A key's own rate limit, if it has one.
    pub fn rate_of(&self, id: &str) -> Option<u32> {
        let keys = self
            .org_keys
            .read()
            .expect("the keys lock is never poisoned");
        keys.get(id).and_then(|k| k.rate_per_s)
    }

    /// Does `org` have a key with this id?
    pub fn contains(&self, org: &str, id: &str) -> bool {
        let keys = self
            .org_keys
            .read()
            .expect("the keys lock is never poisoned");
        keys.get(id).is_some_and(|k| k.org.as_str() == org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::new(s).unwrap()
    }

    #[test]
    fn keys_authenticate_by_hash_and_only_exactly() {
        let (record, secret) = new_key(
            org("acme"),
            "ci".into(),
            Role::Runtime,
            Timestamp::default(),
        );
        let keys = Keys::new("op-secret", vec![record.clone()]);
        assert!(matches!(
            keys.authenticate("op-secret"),
            Some(Principal::Operator)
        ));
        assert!(matches!(
            keys.authenticate(&secret),
            Some(Principal::Org {
                role: Role::Runtime,
                ..
            })
        ));
        assert!(keys.authenticate(&format!("{secret}x")).is_none());
        assert!(keys
            .authenticate(&format!("sgk_{}_nope", record.id))
            .is_none());
        assert!(keys.authenticate("").is_none());
        assert!(keys.remove("acme", &record.id));
        assert!(keys.authenticate(&secret).is_none());
    }

    #[test]
    fn roles_allow_what_api_md_says() {
        let p = |role| Principal::Org {
            key_id: "k".into(),
            org: org("acme"),
            role,
        };
        use Action::*;
        assert_eq!(p(Role::Admin).check("acme", Configure), Ok(()));
        assert_eq!(
            p(Role::Admin).check("acme", SetLimit),
            Err(Denied::Forbidden)
        );
        assert_eq!(p(Role::Runtime).check("acme", Calls), Ok(()));
        assert_eq!(p(Role::Runtime).check("acme", Read), Ok(()));
        assert_eq!(
            p(Role::Runtime).check("acme", Configure),
            Err(Denied::Forbidden)
        );
        assert_eq!(p(Role::Admin).check("other", Read), Err(Denied::Hidden));
        assert_eq!(Principal::Operator.check("any", SetLimit), Ok(()));
    }
}
