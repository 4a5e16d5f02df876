//! What an org shows: its snapshot, an agent, a call, lists of calls.

use super::{group_agent, group_id, group_type, Org};
use crate::call::Phase;
use crate::error::Result;
use crate::id::AgentId;
use crate::types::{CallState, CallType, PerType};
use crate::view::{AgentView, CallView, OrgView};

impl Org {
    /// The org's concurrency snapshot.
    pub(crate) fn view(&self) -> OrgView {
        let mut agents: Vec<AgentView> = (0..self.agents.len() as u32)
            .filter(|&a| {
                CallType::ALL.iter().any(|&t| {
                    let g = &self.groups[group_id(a, t) as usize];
                    g.reserved > 0 || g.active > 0 || !g.queue.is_empty()
                })
            })
            .map(|a| self.agent_view_of(a))
            .collect();
        agents.sort_by(|x, y| x.id.cmp(&y.id));
        OrgView {
            id: self.id.clone(),
            limit: self.limit,
            reserved: self.reserved,
            shared: self.shared_capacity(),
            active: self.active,
            queued: self.queue.len() as u32,
            shared_in_use: self.shared_in_use,
            agents,
        }
    }

    /// One agent's view; an agent never seen has zeros everywhere.
    pub(crate) fn agent_view(&self, agent: &AgentId) -> AgentView {
        match self.agent_index.get(agent) {
            Some(&a) => self.agent_view_of(a),
            None => AgentView {
                id: agent.clone(),
                reserved: PerType::default(),
                active: PerType::default(),
                queued: PerType::default(),
                reserved_total: 0,
                reserved_in_use: 0,
                shared_in_use: 0,
            },
        }
    }

    fn agent_view_of(&self, a: u32) -> AgentView {
        let group = |t: CallType| &self.groups[group_id(a, t) as usize];
        let sum = |f: &dyn Fn(CallType) -> u32| CallType::ALL.iter().map(|&t| f(t)).sum::<u32>();
        AgentView {
            id: self.agents[a as usize].clone(),
            reserved: PerType::from_fn(|t| group(t).reserved),
            active: PerType::from_fn(|t| group(t).active),
            queued: PerType::from_fn(|t| group(t).queue.len() as u32),
            reserved_total: sum(&|t| group(t).reserved),
            reserved_in_use: sum(&|t| group(t).active.min(group(t).reserved)),
            shared_in_use: sum(&|t| group(t).shared_in_use()),
        }
    }

    /// One call by id.
    pub(crate) fn call_view(&self, id: &str) -> Result<CallView> {
        Ok(self.call_view_of(self.key_of(id)?))
    }

    pub(crate) fn call_view_of(&self, key: u32) -> CallView {
        self.call_view_at(key, None)
    }

    /// A call's view; `position` saves the rank lookup when the caller knows it.
    fn call_view_at(&self, key: u32, position: Option<u64>) -> CallView {
        let call = &self.calls[key as usize];
        let mut view = CallView {
            id: call.id.clone(),
            agent: self.agents[group_agent(call.group)].clone(),
            call_type: group_type(call.group),
            state: call.state(),
            slot: None,
            position: None,
            queued_at: call.queued_at,
            admitted_at: None,
            lease_expires_at: None,
            hold_expires_at: None,
            max_wait_expires_at: None,
            lease_ttl_ms: call.lease_ttl_ms(),
            ended_at: None,
            end_reason: None,
        };
        match &call.phase {
            Phase::Queued(w) => {
                view.position = Some(position.unwrap_or_else(|| self.position_of(w.seq)));
                view.hold_expires_at = w.hold_until.finite();
                view.max_wait_expires_at = w.max_wait_at.finite();
            }
            Phase::Active {
                slot,
                admitted_at,
                lease_expires_at,
            } => {
                view.slot = Some(*slot);
                view.admitted_at = Some(*admitted_at);
                view.lease_expires_at = Some(*lease_expires_at);
            }
            Phase::Ended {
                slot,
                admitted_at,
                ended_at,
                reason,
            } => {
                view.slot = *slot;
                view.admitted_at = *admitted_at;
                view.ended_at = Some(*ended_at);
                view.end_reason = Some(*reason);
            }
        }
        view
    }

    /// 1 + the number of queued calls that arrived before `seq`: O(log q).
    fn position_of(&self, seq: u64) -> u64 {
        let rank = self
            .queue
            .rank_of(&seq)
            .expect("a queued call is in the queue");
        rank as u64 + 1
    }

    /// Queued calls in queue order.
    pub(crate) fn queued_calls(&self) -> impl Iterator<Item = CallView> + '_ {
        (1..)
            .zip(self.queue.values())
            .map(|(position, &key)| self.call_view_at(key, Some(position)))
    }

    /// Active calls, oldest admission first (ties by id).
    pub(crate) fn active_calls(&self) -> Vec<CallView> {
        let mut calls: Vec<CallView> = self
            .calls
            .iter()
            .filter(|(_, c)| c.state() == CallState::Active)
            .map(|(key, _)| self.call_view_of(key as u32))
            .collect();
        calls.sort_by(|a, b| (a.admitted_at, &a.id).cmp(&(b.admitted_at, &b.id)));
        calls
    }
}
