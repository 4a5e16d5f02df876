//! Org keys: made with a secret shown once, listed without it, revoked at once.

use slotgate_api::{CreateKey, KeyInfo, KeyList, NewKey, UpdateKey};
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
        if body.rate_per_s.is_some() {
            // Rates protect the server, which is the operator's.
            operator_only(p)?;
        }
        self.observe(org, |e| e.org(org)).await??;
        let (mut record, secret) = new_key(OrgId::new(org)?, body.name, body.role, clock::now());
        record.rate_per_s = body.rate_per_s;
        self.write(Write::PutKey(record.clone())).await?;
        let answer = NewKey {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role,
            rate_per_s: record.rate_per_s,
            key: secret,
        };
        self.keys.insert(record);
        Ok(answer)
    }

    /// A page of an org's keys, oldest first, without secrets.
    pub async fn keys(&self, p: &Principal, org: &str, page: Page) -> Result<KeyList> {
        p.check(org, Action::Configure)?;
        self.observe(org, |e| e.org(org)).await??;
        let keys = self.keys.of_org(org).into_iter().map(key_info);
        let (keys, next_cursor) = page.cut(keys.collect());
        Ok(KeyList { keys, next_cursor })
    }

    /// Changes a key's rate limit (operator only). Durable before it
    /// returns; the key's next request is held to the new rate.
    pub async fn update_key(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        body: UpdateKey,
    ) -> Result<KeyInfo> {
        p.check(org, Action::Configure)?;
        body.check()?;
        operator_only(p)?;
        let mut record = self
            .keys
            .of_org(org)
            .into_iter()
            .find(|k| k.id == id)
            .ok_or(Error::KeyNotFound)?;
        record.rate_per_s = body.rate_per_s;
        self.write(Write::PutKey(record.clone())).await?;
        self.keys.insert(record.clone());
        Ok(key_info(record))
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

/// A key as listed: never its secret.
fn key_info(k: crate::auth::KeyRecord) -> KeyInfo {
    KeyInfo {
        id: k.id,
        name: k.name,
        role: k.role,
        rate_per_s: k.rate_per_s,
        created_at: clock::rfc3339(k.created_at),
    }
}

/// Only the operator key may do this.
fn operator_only(p: &Principal) -> Result<()> {
    match p {
        Principal::Operator => Ok(()),
        Principal::Org { .. } => Err(Error::OperatorOnly),
    }
}
