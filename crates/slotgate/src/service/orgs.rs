//! Orgs, their limits and their agents' reservations, and the recent past.

use slotgate_api::{
    Agent, CreateOrg, FieldError, HistoryPage, Org, OrgList, OrgRate, RateSource, Reservations,
    SetBurst, SetCaps, SetLimit, SetOrgRate,
};
use slotgate_core::{AgentId, OrgId};

use super::plans::Which;
use super::{Error, Page, Result, Service};
use crate::auth::{Action, Principal};
use crate::history;
use crate::store::Write;

impl Service {
    /// Creates an org with its own limit of `limit` slots, or on a plan
    /// (taking the plan's limit unless `limit` is given, and its burst)
    /// (operator only); durable before it returns.
    pub async fn create_org(&self, p: &Principal, body: CreateOrg) -> Result<Org> {
        operator_only(p)?;
        // The body's field is `id`; the engine's error names the org.
        let id = OrgId::new(&body.id).map_err(|e| match e {
            slotgate_core::Error::Invalid { message, .. } => FieldError::new("id", message).into(),
            other => Error::from(other),
        })?;
        self.check_up()?;
        let ran = self
            .with_plan_of(body.plan.as_deref(), body.limit, |limit, plan| {
                // A new org's engine joins the index with its first change submitted.
                Ok(self.cores.create(&id, self.config, |engine| {
                    self.run(&id, engine, Some(p.key_id()), |core, now| {
                        let e = &mut core.engine;
                        e.create_org(id.clone(), limit, now)?;
                        super::plans::join(e, &id, plan, limit, now)
                    })
                })?)
            })
            .await?;
        Ok(self.finish(ran).await??.into())
    }

    /// A page of orgs, by id (operator only).
    pub async fn orgs(&self, p: &Principal, page: Page) -> Result<OrgList> {
        operator_only(p)?;
        let (ids, next_cursor) = page.cut(self.cores.ids());
        let orgs = self
            .observe_each(&ids, |e| e.org(e.id.as_str()).ok().map(Org::from))
            .await?;
        Ok(OrgList {
            orgs: orgs.into_iter().flatten().collect(),
            next_cursor,
        })
    }

    /// An org's concurrency snapshot.
    pub async fn org(&self, p: &Principal, org: &str) -> Result<Org> {
        p.check(org, Action::Read)?;
        Ok(self.observe(org, |e| e.org(org)).await??.into())
    }

    /// Sets an org's own limit (operator only), overriding its plan's; a
    /// null limit returns it to its plan's. Never ends an active call: a
    /// lower limit only stops admissions until enough calls end. Durable
    /// before it returns.
    pub async fn set_limit(&self, p: &Principal, org: &str, body: SetLimit) -> Result<Org> {
        p.check(org, Action::SetLimit)?;
        let view = self.set_own(p, org, Which::Limit, body.limit).await?;
        Ok(view.into())
    }

    /// Sets an org's own burst `B` (operator only, as the limit: both are
    /// the plan's), overriding its plan's; a null burst returns it to its
    /// plan's. Never ends an active call: a lower burst only stops
    /// admissions above the limit until enough calls end. Durable before it returns.
    pub async fn set_burst(&self, p: &Principal, org: &str, body: SetBurst) -> Result<Org> {
        p.check(org, Action::SetLimit)?;
        let view = self.set_own(p, org, Which::Burst, body.burst).await?;
        Ok(view.into())
    }

    /// One agent (zeros if never seen).
    pub async fn agent(&self, p: &Principal, org: &str, agent: &str) -> Result<Agent> {
        p.check(org, Action::Read)?;
        let agent = AgentId::new(agent)?;
        Ok(self.observe(org, |e| e.agent(org, &agent)).await??.into())
    }

    /// Sets an agent's reservations; queued calls they admit are admitted
    /// before it returns. Durable before it returns.
    pub async fn set_reservations(
        &self,
        p: &Principal,
        org: &str,
        agent: &str,
        r: Reservations,
    ) -> Result<Agent> {
        p.check(org, Action::Configure)?;
        let agent = AgentId::new(agent)?;
        let view = self
            .change(org, Some(p.key_id()), |e, now| {
                e.set_reservations(org, &agent, r, now)
            })
            .await??;
        Ok(view.into())
    }

    /// Sets an agent's caps, all five at once (`None`: no cap). Refused
    /// below the reservation a cap covers; a lower cap ends no call, and
    /// queued calls a higher one admits are admitted before it returns.
    /// Durable before it returns.
    pub async fn set_caps(
        &self,
        p: &Principal,
        org: &str,
        agent: &str,
        caps: SetCaps,
    ) -> Result<Agent> {
        p.check(org, Action::Configure)?;
        let agent = AgentId::new(agent)?;
        let view = self
            .change(org, Some(p.key_id()), |e, now| {
                e.set_caps(org, &agent, caps, now)
            })
            .await??;
        Ok(view.into())
    }

    /// Removes an agent's reservations: its slots return to the shared pool at once.
    pub async fn remove_reservations(
        &self,
        p: &Principal,
        org: &str,
        agent: &str,
    ) -> Result<Agent> {
        p.check(org, Action::Configure)?;
        let agent = AgentId::new(agent)?;
        let view = self
            .change(org, Some(p.key_id()), |e, now| {
                e.remove_agent(org, &agent, now)
            })
            .await??;
        Ok(view.into())
    }

    /// The rate an org's keys are held to together, and where it comes from.
    pub async fn org_rate(&self, p: &Principal, org: &str) -> Result<OrgRate> {
        p.check(org, Action::Read)?;
        self.observe(org, |e| e.org(org)).await??;
        Ok(self.rate_of_org(&OrgId::new(org)?))
    }

    /// Sets an org's own request rate, for all its keys together (operator
    /// only; `None`: back to the server's setting). Durable before it
    /// returns; the org's next request is held to it.
    pub async fn set_org_rate(
        &self,
        p: &Principal,
        org: &str,
        body: SetOrgRate,
    ) -> Result<OrgRate> {
        operator_only(p)?;
        self.check_up()?;
        let ticket = {
            // Under the org's lock: two changes of its rate reach the store
            // and the limits in the same order.
            let locked = self.cores.lock(org).await?;
            let ticket = self.tickets.submit(Write::OrgRate {
                org: org.to_string(),
                rate_per_s: body.rate_per_s,
            });
            self.limits
                .set_own_org_rate(locked.id.clone(), body.rate_per_s);
            ticket
        };
        self.tickets.durable(ticket).await?;
        Ok(self.rate_of_org(&OrgId::new(org)?))
    }

    fn rate_of_org(&self, org: &OrgId) -> OrgRate {
        let own = self.limits.own_org_rate(org);
        OrgRate {
            rate_per_s: own,
            effective_rate_per_s: self.limits.org_rate(org),
            source: match own {
                Some(_) => RateSource::Org,
                None => RateSource::Server,
            },
        }
    }

    /// Active and queued calls of the last 15 minutes, for charts (in memory: since the server started).
    pub async fn history(&self, p: &Principal, org: &str) -> Result<HistoryPage> {
        p.check(org, Action::Read)?;
        self.observe(org, |e| e.org(org)).await??;
        Ok(HistoryPage {
            interval_s: history::INTERVAL.as_secs(),
            samples: self.history.of(org),
        })
    }
}

pub(super) fn operator_only(p: &Principal) -> Result<()> {
    match p {
        Principal::Operator => Ok(()),
        Principal::Org { .. } => Err(Error::OperatorOnly),
    }
}
