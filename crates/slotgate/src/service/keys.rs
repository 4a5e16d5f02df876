//! Org keys: made with a secret shown once, listed without it, revoked at once.

use slotgate_api::{CreateKey, KeyInfo, KeyList, NewKey};
use slotgate_core::OrgId;

use super::{Error, Page, Result, Service};
use crate::auth::{new_key, Action, Principal};
use crate::clock;
use crate::store::Write;

impl Service {
    /// Makes an org key (operator or org admin). Durable before it returns;
    /// the secret is in the answer only (the store keeps its hash).
    pub async fn create_key(&self, p: &Principal, org: &str, body: CreateKey) -> Result<NewKey> {
        p.check(org, Action::Configure)?;
        body.check()?;
        self.observe(org, |e| e.org(org)).await??;
        let (record, secret) = new_key(OrgId::new(org)?, body.name, body.role, clock::now());
        self.write(Write::PutKey(record.clone())).await?;
        let answer = NewKey {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role,
            key: secret,
        };
        self.keys.insert(record);
        Ok(answer)
    }

    /// A page of an org's keys, oldest first, without secrets.
    pub async fn keys(&self, p: &Principal, org: &str, page: Page) -> Result<KeyList> {
        p.check(org, Action::Configure)?;
        self.observe(org, |e| e.org(org)).await??;
        let keys = self.keys.of_org(org).into_iter().map(|k| KeyInfo {
            id: k.id,
            name: k.name,
            role: k.role,
            created_at: clock::rfc3339(k.created_at),
        });
        let (keys, next_cursor) = page.cut(keys.collect());
        Ok(KeyList { keys, next_cursor })
    }

    /// Revokes a key: once this returns (durable), the key works nowhere.
    pub async fn revoke_key(&self, p: &Principal, org: &str, id: &str) -> Result<()> {
        p.check(org, Action::Configure)?;
        if !self.keys.contains(org, id) {
            return Err(Error::KeyNotFound);
        }
        self.write(Write::DeleteKey { id: id.to_string() }).await?;
        self.keys.remove(org, id);
        Ok(())
    }
}
