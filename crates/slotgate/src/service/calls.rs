//! Calls: acquire (with a wait in the queue), read, heartbeat, release, lists.

use std::sync::Arc;
use std::time::Duration;

use slotgate_api::{limits, AcquireCall, Call, CallList, CallState, Heartbeat, IfBlocked};
use slotgate_core::{
    AcquireRequest, Acquired, AgentId, CallId, CallView, ListFilter, OrgId, WaitToken,
};

use super::{Page, Result, Service};
use crate::auth::{random_hex, Action, Principal};

/// How an acquire ended: the API answers 201, 202 and 200 for these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted, at once or within the request's wait.
    Admitted,
    /// Queued; the call has its position.
    Queued,
    /// The id exists already with the same agent and type: its current state.
    Existing,
    /// It queued and ended while the request waited (its `max_wait` passed):
    /// no longer queued, never admitted.
    EndedWhileWaiting,
}

/// Which live calls to list.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Active or queued only (both when `None`).
    pub state: Option<CallState>,
    /// Only this agent's.
    pub agent: Option<String>,
}

impl Service {
    /// Asks for a slot. Durable before it returns. With `wait_s`, a queued
    /// call waits up to that long for admission, and the open wait holds its
    /// place in the queue (a client that hangs up lets the hold run out).
    pub async fn acquire(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        body: AcquireCall,
    ) -> Result<(Admission, Call)> {
        p.check(org, Action::Calls)?;
        let id = match &body.id {
            Some(id) => CallId::new(id)?,
            None => CallId::new(&format!("call_{}", random_hex(12)))?,
        };
        let mut req = AcquireRequest::new(id.clone(), AgentId::new(&body.agent)?, body.call_type);
        req.lease_ttl = body.lease_ttl()?;
        req.max_wait = body.max_wait()?;
        req.if_blocked = body.if_blocked.unwrap_or(IfBlocked::Queue);
        let wait = body.wait()?;
        // A named id the engine does not hold may be a retry of a call that
        // ended longer ago than the engine keeps ended calls: the store
        // answers for it. Only an id that the org's index of ended ids may
        // hold is looked up there; a new id reads nothing. Both are checked
        // under the same lock as the acquire, so the engine cannot forget
        // the call in between (an ended call is in the index before the
        // lock is let go).
        let mut looked_up = body.id.is_none();
        let acquired = loop {
            self.check_up()?;
            let ran = self
                .execute_core(org, None, |core, now| {
                    let (e, ended) = (&mut core.engine, &core.ended);
                    (looked_up || e.has_call(org, id.as_str()) || !ended.may_hold(id.as_str()))
                        .then(|| e.acquire(org, req.clone(), now))
                })
                .await?;
            // Nothing ran (and nothing was seen) without the id: no wait.
            if ran.result.is_some() {
                break self.finish(ran).await?.expect("checked above")?;
            }
            if let Some(ended) = self.ended_beyond_engine(org, &id).await? {
                if ended.agent != req.agent || ended.call_type != req.call_type {
                    return Err(slotgate_core::Error::CallIdConflict.into());
                }
                return Ok((Admission::Existing, ended.into()));
            }
            looked_up = true;
        };
        let (admission, call) = match acquired {
            Acquired::Admitted(c) => (Admission::Admitted, c),
            Acquired::Queued(c) => (Admission::Queued, c),
            Acquired::Existing(c) => (Admission::Existing, c),
        };
        if call.state != CallState::Queued || wait.is_zero() {
            return Ok((admission, call.into()));
        }
        let call = self
            .wait_while_queued(p, &OrgId::new(org)?, call.id, wait)
            .await?;
        let admission = match (admission, call.state) {
            (Admission::Queued, CallState::Active) => Admission::Admitted,
            (Admission::Queued, CallState::Ended) => Admission::EndedWhileWaiting,
            (admission, _) => admission,
        };
        Ok((admission, call.into()))
    }

    /// A call. With `wait_s` (0 to 60 s), a queued call is held while it
    /// waits up to that long to leave the queue, and the answer is its state then.
    pub async fn call(
        self: &Arc<Self>,
        p: &Principal,
        org: &str,
        id: &str,
        wait_s: Option<f64>,
    ) -> Result<Call> {
        p.check(org, Action::Calls)?;
        let wait = limits::request_wait(wait_s.unwrap_or(0.0))?;
        let call = match self.observe_at(org, |e, now| e.call(org, id, now)).await? {
            Err(slotgate_core::Error::CallNotFound) => self.ended_in_store(org, id).await?,
            found => found?,
        };
        if call.state != CallState::Queued || wait.is_zero() {
            return Ok(call.into());
        }
        Ok(self
            .wait_while_queued(p, &OrgId::new(org)?, call.id, wait)
            .await?
            .into())
    }

    /// Renews a call's lease (or a queued call's hold). A new `lease_ttl_s`
    /// is an engine event (`call.lease_changed`), durable before this
    /// returns; a plain renewal writes nothing (after a restart every lease
    /// gets one `lease_ttl` of grace). An ended call is refused with the
    /// call as it ended.
    pub async fn heartbeat(
        &self,
        p: &Principal,
        org: &str,
        id: &str,
        body: Heartbeat,
    ) -> Result<Call> {
        p.check(org, Action::Calls)?;
        let ttl = body.lease_ttl()?;
        let renewed = self
            .change(org, None, |e, now| e.heartbeat(org, id, ttl, now))
            .await?;
        let call = match renewed {
            Err(slotgate_core::Error::CallNotFound) => {
                // As the engine answers for an ended call it still keeps.
                let ended = self.ended_in_store(org, id).await?;
                ttl.map(slotgate_core::check_lease_ttl).transpose()?;
                return Err(slotgate_core::Error::CallEnded {
                    call: Box::new(ended),
                }
                .into());
            }
            renewed => renewed?,
        };
        Ok(call.into())
    }

    /// Ends a call: `released` if active (its slot goes to the oldest
    /// admissible queued call before this returns), `cancelled` if queued;
    /// an ended call answers as it ended. Durable before it returns.
    pub async fn release(&self, p: &Principal, org: &str, id: &str) -> Result<Call> {
        p.check(org, Action::Calls)?;
        let call = match self
            .change(org, None, |e, now| e.release(org, id, now))
            .await?
        {
            Err(slotgate_core::Error::CallNotFound) => self.ended_in_store(org, id).await?,
            ended => ended?,
        };
        Ok(call.into())
    }

    /// A call the engine no longer holds but the store keeps: it ended
    /// longer ago than the engine keeps ended calls, within
    /// `--ended-retention`. Else the engine's answer: not found.
    async fn ended_in_store(&self, org: &str, id: &str) -> Result<CallView> {
        self.metrics.ended_call_read();
        let store = self.store.clone();
        let (org, id) = (org.to_string(), id.to_string());
        let kept = super::blocking(move || store.ended_call(&org, &id)).await?;
        Ok(kept
            .and_then(|c| c.ended_view())
            .ok_or(slotgate_core::Error::CallNotFound)?)
    }

    /// The call as it ended, if the store keeps it (for an acquire of an id
    /// the engine does not hold).
    async fn ended_beyond_engine(&self, org: &str, id: &CallId) -> Result<Option<CallView>> {
        match self.ended_in_store(org, id.as_str()).await {
            Ok(ended) => Ok(Some(ended)),
            Err(super::Error::Refused(slotgate_core::Error::CallNotFound)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A page of live calls: active ones (oldest admission first), then
    /// queued ones in queue order. Taken by rank (the cursor is an offset),
    /// so a page costs O(log n + its length), not the org's number of calls.
    pub async fn calls(
        &self,
        p: &Principal,
        org: &str,
        filter: CallFilter,
        page: Page,
    ) -> Result<CallList> {
        p.check(org, Action::Calls)?;
        let filter = ListFilter {
            state: filter.state,
            agent: filter.agent.as_deref().map(AgentId::new).transpose()?,
        };
        let listed = self
            .observe_at(org, |e, now| {
                e.calls_page(org, &filter, page.offset, page.limit, now)
            })
            .await??;
        Ok(CallList {
            calls: listed.calls.into_iter().map(Into::into).collect(),
            next_cursor: listed.next.map(|offset| offset.to_string()),
        })
    }

    /// Holds a queued call with an open wait until it leaves the queue,
    /// `wait` passes or the server shuts down; answers 401 (`Revoked`) at
    /// once if `p`'s key is revoked meanwhile (the wait is closed all the same).
    async fn wait_while_queued(
        self: &Arc<Self>,
        p: &Principal,
        org: &OrgId,
        call: CallId,
        wait: Duration,
    ) -> Result<CallView> {
        let guard = self.waiters.register(org.clone(), call.clone());
        let notified = guard.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let ran = self
            .execute(org.as_str(), None, |e, now| {
                e.open_wait(org.as_str(), call.as_str(), now)
            })
            .await?;
        let mut hold = OpenWait {
            service: self.clone(),
            org: org.clone(),
            call: call.clone(),
            open: ran.result.as_ref().ok().map(|(_, token)| *token),
        };
        self.tickets.durable(ran.ticket).await?;
        let (view, token) = ran.result?;
        let mut revoked = false;
        if view.state == CallState::Queued {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = notified => {}
                _ = self.interrupted() => {}
                () = self.keys.revoked(p) => revoked = true,
            }
        }
        // Close the wait whatever happened: it starts the call's hold if still queued.
        hold.open = None;
        let view = self
            .change(org.as_str(), None, |e, now| {
                e.close_wait(org.as_str(), call.as_str(), token, now)
            })
            .await??;
        if revoked {
            return Err(super::Error::Revoked);
        }
        Ok(view)
    }
}

/// An open wait on a call. If the request goes away first (the client hung
/// up), dropping this closes the wait, so the call's hold starts running and
/// an unheld call is abandoned in time.
struct OpenWait {
    service: Arc<Service>,
    org: OrgId,
    call: CallId,
    /// The engine's token while the wait is open.
    open: Option<WaitToken>,
}

impl Drop for OpenWait {
    fn drop(&mut self) {
        if let Some(token) = self.open {
            let (s, org, call) = (self.service.clone(), self.org.clone(), self.call.clone());
            tokio::spawn(async move {
                let _ = s
                    .change(org.as_str(), None, |e, now| {
                        e.close_wait(org.as_str(), call.as_str(), token, now)
                    })
                    .await;
            });
        }
    }
}
