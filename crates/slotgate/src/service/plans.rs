//! Plans: operator-defined tiers of limit and burst, and the orgs on them.
//!
//! The engine knows no plans: each org's engine holds its effective limit
//! and burst, and a label ([`PlanLink`]) naming its plan and whether its
//! limit and burst are the plan's or its own. This module keeps the plans'
//! terms and turns a plan change into one change of every org on it.
//!
//! One plan operation runs at a time (`Plans::turn`): creating, changing or
//! deleting a plan, moving an org to a plan, returning an org's limit or
//! burst to its plan's. Under the turn, which orgs are on a plan cannot
//! change, so a plan change locks them (by org id, as every multi-org lock
//! does), checks them all, changes them all, and submits every org's events
//! with the plan in one write: one store transaction, durable whole or not
//! at all. A change that would break any org is refused whole.

use std::collections::BTreeMap;
use std::sync::Mutex;

use slotgate_api::{CreatePlan, FieldError, Plan, PlanEvent, PlanEventPage, PlanList, PlanTerms};
use slotgate_core::{OrgId, OrgView, PlanId, PlanLink, Source};

use super::{Error, Result, Service};
use crate::auth::Principal;
use crate::clock;
use crate::store::{PlanRow, PlanWrite, Write};

/// How many orgs a refusal names; it counts them all.
const NAMED: usize = 10;

/// The plans' terms, and the turn of plan operations.
#[derive(Debug, Default)]
pub(super) struct Plans {
    /// One plan operation at a time; taken before any org's lock.
    turn: tokio::sync::Mutex<()>,
    /// Each plan's terms, by id. A `std` lock, held to read or write the
    /// map only, never across an `.await`.
    table: Mutex<BTreeMap<String, PlanTerms>>,
}

impl Plans {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PlanTerms>> {
        self.table
            .lock()
            .expect("the plan table's lock is never poisoned: nothing panics under it")
    }

    /// Replaces every plan with `rows` (at start, and when the state is
    /// reloaded from the store).
    pub(super) fn replace(&self, rows: Vec<PlanRow>) {
        *self.table() = rows
            .into_iter()
            .map(|r| {
                let terms = PlanTerms {
                    limit: r.limit,
                    burst: r.burst,
                };
                (r.id, terms)
            })
            .collect();
    }

    /// A plan's terms.
    fn terms(&self, plan: &str) -> Result<PlanTerms> {
        self.table()
            .get(plan)
            .copied()
            .ok_or_else(|| Error::PlanNotFound(plan.to_string()))
    }
}

/// The plan's id, checked.
fn plan_id(field: &'static str, id: &str) -> Result<PlanId> {
    PlanId::new(id).map_err(|e| match e {
        slotgate_core::Error::Invalid { message, .. } => FieldError::new(field, message).into(),
        other => Error::from(other),
    })
}

/// An org's limit and burst under `link`, with `terms` its plan's: the
/// plan's where it takes them, else what it has now.
fn effective(view: &OrgView, link: &PlanLink, terms: PlanTerms) -> (u32, u32) {
    let pick = |source, plan, own| match source {
        Source::Plan => plan,
        Source::Org => own,
    };
    (
        pick(link.limit_source, terms.limit, view.limit),
        pick(link.burst_source, terms.burst, view.burst),
    )
}

impl Service {
    /// Every plan, with how many orgs are on it (operator only).
    pub async fn plans(&self, p: &Principal) -> Result<PlanList> {
        super::orgs::operator_only(p)?;
        let counts = self.plan_members().await?;
        let plans = self
            .plans
            .table()
            .iter()
            .map(|(id, terms)| plan(id, *terms, counts.get(id.as_str()).map_or(0, Vec::len)))
            .collect();
        Ok(PlanList { plans })
    }

    /// One plan (operator only).
    pub async fn get_plan(&self, p: &Principal, id: &str) -> Result<Plan> {
        super::orgs::operator_only(p)?;
        let terms = self.plans.terms(id)?;
        let counts = self.plan_members().await?;
        Ok(plan(id, terms, counts.get(id).map_or(0, Vec::len)))
    }

    /// `plan.changed` events after `after` (operator only).
    pub async fn plan_events(
        &self,
        p: &Principal,
        after: u64,
        limit: usize,
    ) -> Result<PlanEventPage> {
        super::orgs::operator_only(p)?;
        self.check_up()?;
        let store = self.store.clone();
        let events = super::blocking(move || store.plan_events(after, limit)).await?;
        let next = events.last().map_or(after, |e| e.seq);
        Ok(PlanEventPage { events, next })
    }

    /// Creates a plan (operator only); durable before it returns.
    pub async fn create_plan(&self, p: &Principal, body: CreatePlan) -> Result<Plan> {
        super::orgs::operator_only(p)?;
        let id = plan_id("id", &body.id)?;
        let terms = PlanTerms {
            limit: body.limit,
            burst: body.burst,
        };
        self.check_up()?;
        let _turn = self.plans.turn.lock().await;
        if self.plans.table().contains_key(id.as_str()) {
            return Err(Error::PlanExists(id.to_string()));
        }
        let ticket = self.submit_plan(p, id.as_str(), None, Some(terms), Vec::new(), 0);
        self.tickets.durable(ticket).await?;
        Ok(plan(id.as_str(), terms, 0))
    }

    /// Changes a plan's limit, burst or both, and with them every org on it
    /// that takes them, in one durable change; or refuses it whole, naming
    /// the orgs whose reservations the new limit would be below, and
    /// changes nothing. Lowering ends no call. Durable before it returns.
    pub async fn update_plan(
        &self,
        p: &Principal,
        id: &str,
        body: slotgate_api::UpdatePlan,
    ) -> Result<Plan> {
        super::orgs::operator_only(p)?;
        self.check_up()?;
        let _turn = self.plans.turn.lock().await;
        let old = self.plans.terms(id)?;
        let new = PlanTerms {
            limit: body.limit.unwrap_or(old.limit),
            burst: body.burst.unwrap_or(old.burst),
        };
        if new == old {
            // A change that changes nothing records nothing, as for orgs.
            let members = self.plan_members().await?.remove(id).unwrap_or_default();
            return Ok(plan(id, new, members.len()));
        }
        let mut orgs = self.cores.lock_where(|e| on_plan(e, id).is_some()).await;
        // Every org first: the change is refused whole or made whole.
        let mut refused = Vec::new();
        for e in &orgs {
            let view = e.org(e.id.as_str())?;
            let (limit, _) = effective(&view, &view.plan, new);
            if limit < view.reserved {
                refused.push((e.id.to_string(), view.reserved));
            }
        }
        if !refused.is_empty() {
            return Err(Error::PlanBelowReservations {
                plan: id.to_string(),
                limit: new.limit,
                count: refused.len(),
                orgs: refused.into_iter().take(NAMED).collect(),
            });
        }
        let mut events = Vec::new();
        let mut woken = Vec::new();
        let mut changed_orgs = 0;
        for e in &mut orgs {
            let org = e.id.clone();
            let view = e.org(org.as_str())?;
            let (limit, burst) = effective(&view, &view.plan, new);
            if (limit, burst) != (view.limit, view.burst) {
                changed_orgs += 1;
            }
            e.set_terms(org.as_str(), view.plan.clone(), limit, burst, clock::now())?;
            let (mut made, mut changed) = self.drain(&org, e.core(), Some(p.key_id()));
            events.append(&mut made);
            woken.append(&mut changed);
        }
        let members = orgs.len();
        let ticket = self.submit_plan(p, id, Some(old), Some(new), events, changed_orgs);
        drop(orgs);
        self.tickets.durable(ticket).await?;
        for (org, call) in &woken {
            self.waiters.wake(org, call);
        }
        Ok(plan(id, new, members))
    }

    /// Deletes a plan (operator only); refused while orgs are on it.
    /// Durable before it returns.
    pub async fn delete_plan(&self, p: &Principal, id: &str) -> Result<()> {
        super::orgs::operator_only(p)?;
        self.check_up()?;
        let _turn = self.plans.turn.lock().await;
        let old = self.plans.terms(id)?;
        let members = self.plan_members().await?.remove(id).unwrap_or_default();
        if !members.is_empty() {
            return Err(Error::PlanInUse {
                plan: id.to_string(),
                count: members.len(),
                orgs: members.into_iter().take(NAMED).collect(),
            });
        }
        let ticket = self.submit_plan(p, id, Some(old), None, Vec::new(), 0);
        self.tickets.durable(ticket).await?;
        Ok(())
    }

    /// Moves an org to a plan: it takes the plan's limit and burst (its own
    /// ones are cleared), with the rules of a limit change (refused below
    /// its reservations; lowering ends no call). `None`: off plans, keeping
    /// its limit and burst as its own. Operator only; durable before it returns.
    pub async fn set_org_plan(
        &self,
        p: &Principal,
        org: &str,
        body: slotgate_api::SetPlan,
    ) -> Result<slotgate_api::Org> {
        p.check(org, crate::auth::Action::SetLimit)?;
        self.check_up()?;
        let _turn = self.plans.turn.lock().await;
        let target = match &body.plan {
            Some(plan) => {
                let id = plan_id("plan", plan)?;
                Some((self.plans.terms(id.as_str())?, id))
            }
            None => None,
        };
        let view = self
            .change(org, Some(p.key_id()), |e, now| {
                let view = e.org(org)?;
                match target {
                    Some((terms, id)) => {
                        e.set_terms(org, PlanLink::on(id), terms.limit, terms.burst, now)
                    }
                    None => e.set_terms(org, PlanLink::default(), view.limit, view.burst, now),
                }
            })
            .await??;
        Ok(view.into())
    }

    /// Sets an org's own limit or burst (`Some`), overriding its plan's, or
    /// returns it to its plan's (`None`; 409 `no_plan` for an org on no
    /// plan). An org on no plan changes exactly as before plans existed.
    pub(super) async fn set_own(
        &self,
        p: &Principal,
        org: &str,
        which: Which,
        value: Option<u32>,
    ) -> Result<OrgView> {
        // Returning to the plan's value reads the plan: under the turn, so
        // that a plan change is wholly before or after it.
        let _turn = match value {
            None => Some(self.plans.turn.lock().await),
            Some(_) => None,
        };
        let by = Some(p.key_id());
        self.change(org, by, |e, now| {
            let view = e.org(org)?;
            let mut link = view.plan.clone();
            let source = match value {
                Some(_) => Source::Org,
                None => Source::Plan,
            };
            let terms = match (&link.plan, value) {
                (_, Some(v)) => PlanTerms { limit: v, burst: v },
                (None, None) => return Err(Error::NoPlan(org.to_string())),
                (Some(plan), None) => self.plans.terms(plan.as_str())?,
            };
            let (limit, burst) = match which {
                Which::Limit => {
                    if link.plan.is_some() {
                        link.limit_source = source;
                    }
                    (terms.limit, view.burst)
                }
                Which::Burst => {
                    if link.plan.is_some() {
                        link.burst_source = source;
                    }
                    (view.limit, terms.burst)
                }
            };
            if link.plan.is_none() {
                // No plan: exactly the change of version 1 and 2.
                return Ok(match which {
                    Which::Limit => e.set_limit(org, limit, now)?,
                    Which::Burst => e.set_burst(org, burst, now)?,
                });
            }
            Ok(e.set_terms(org, link, limit, burst, now)?)
        })
        .await?
    }

    /// The plan and terms an org is created with: `plan`'s, and `limit`
    /// its own if given. Runs `create` under the plans' turn, so the plan
    /// stays as read until the org exists.
    pub(super) async fn with_plan_of<R>(
        &self,
        plan: Option<&str>,
        limit: Option<u32>,
        create: impl FnOnce(u32, Option<(PlanLink, u32)>) -> Result<R>,
    ) -> Result<R> {
        let Some(plan) = plan else {
            let limit = limit
                .ok_or_else(|| FieldError::new("limit", "is required unless `plan` is given"))?;
            return create(limit, None);
        };
        let id = plan_id("plan", plan)?;
        let _turn = self.plans.turn.lock().await;
        let terms = self.plans.terms(id.as_str())?;
        let mut link = PlanLink::on(id);
        if limit.is_some() {
            link.limit_source = Source::Org;
        }
        create(limit.unwrap_or(terms.limit), Some((link, terms.burst)))
    }

    /// Which orgs are on each plan, by plan id (each org read under its own lock).
    async fn plan_members(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let ids = self.cores.ids();
        let on = self
            .observe_each(&ids, |e| {
                on_plan(e, "").map(|plan| (plan, e.id.to_string()))
            })
            .await?;
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (plan, org) in on.into_iter().flatten() {
            members.entry(plan).or_default().push(org);
        }
        Ok(members)
    }

    /// Submits a plan change and its orgs' events as one write, and sets
    /// the plan table as it now is; the write's ticket.
    fn submit_plan(
        &self,
        p: &Principal,
        id: &str,
        old: Option<PlanTerms>,
        new: Option<PlanTerms>,
        events: Vec<(slotgate_core::Event, Option<String>)>,
        orgs_changed: usize,
    ) -> u64 {
        let terms = new
            .or(old)
            .expect("a plan change has terms before or after");
        let event = PlanEvent {
            seq: 0,
            kind: "plan.changed".into(),
            at: slotgate_api::time::rfc3339(clock::now().as_millis()),
            plan: id.to_string(),
            old,
            new,
            orgs_changed: u32::try_from(orgs_changed).unwrap_or(u32::MAX),
            by: Some(p.key_id().to_string()),
        };
        let write = PlanWrite {
            plan: PlanRow {
                id: id.to_string(),
                limit: terms.limit,
                burst: terms.burst,
            },
            deleted: new.is_none(),
            event,
            events,
        };
        let mut table = self.plans.table();
        match new {
            Some(terms) => table.insert(id.to_string(), terms),
            None => table.remove(id),
        };
        self.tickets.submit(Write::Plan(Box::new(write)))
    }
}

/// Which of an org's own values [`Service::set_own`] sets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Which {
    /// Its limit.
    Limit,
    /// Its burst.
    Burst,
}

/// The plan the locked org is on, if it is `plan` (any plan when `plan` is empty).
fn on_plan(e: &super::cores::Locked, plan: &str) -> Option<String> {
    let view = e.org_summary(e.id.as_str(), 0).ok()?.0;
    let on = view.plan.plan?;
    (plan.is_empty() || on.as_str() == plan).then(|| on.to_string())
}

fn plan(id: &str, terms: PlanTerms, orgs: usize) -> Plan {
    Plan {
        id: id.to_string(),
        limit: terms.limit,
        burst: terms.burst,
        orgs: u32::try_from(orgs).unwrap_or(u32::MAX),
    }
}

/// An org created on a plan: its link and the plan's burst, set in its
/// engine right after it is made.
pub(super) fn join(
    e: &mut slotgate_core::Engine,
    org: &OrgId,
    plan: Option<(PlanLink, u32)>,
    limit: u32,
    now: slotgate_core::Timestamp,
) -> slotgate_core::Result<OrgView> {
    match plan {
        None => e.org(org.as_str()),
        Some((link, burst)) => e.set_terms(org.as_str(), link, limit, burst, now),
    }
}
