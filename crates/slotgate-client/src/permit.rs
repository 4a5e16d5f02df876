//! Holding a slot: wait through the queue, keep the lease alive, give it back.

use std::sync::Arc;
use std::time::Duration;

use slotgate_api::{
    AcquireCall, BlockedReason, CallState, CallType, ErrorCode, EventKind, IfBlocked,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::Call;

/// How long one long-poll waits before asking again (the server allows 60 s).
const LONG_POLL: Duration = Duration::from_secs(20);

/// What to acquire, and how.
#[derive(Clone)]
pub struct Acquire {
    /// The agent the call is for.
    pub agent: String,
    /// The call's type.
    pub call_type: CallType,
    /// The call's id; made up if `None`. The same id is sent on every retry,
    /// so a retried request never takes a second slot.
    pub id: Option<String>,
    /// The lease length (5 s to 1 h; default 60 s).
    pub lease_ttl: Duration,
    /// Heartbeat period; default a third of the lease.
    pub heartbeat_every: Option<Duration>,
    /// Server-side limit on queueing (`max_wait_s`).
    pub max_wait: Option<Duration>,
    /// Client-side limit: give up (and cancel the call) after this long.
    pub timeout: Option<Duration>,
    /// A call that would wait blocked (the org as configured now can never
    /// admit it): queued anyway (`None`, the server's default `queue`), or
    /// refused with `call_blocked` (`Some(IfBlocked::Refuse)`), queueing nothing.
    pub if_blocked: Option<IfBlocked>,
    /// Called with the call's place in the queue (position and expected
    /// wait) at once and whenever its position changes.
    pub on_queue: Option<Arc<dyn Fn(QueueStatus) + Send + Sync>>,
}

/// Where a queued call stands, as [`Acquire::on_queue`] hears it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueStatus {
    /// 1-based place in the org's queue.
    pub position: u64,
    /// About how long until it is admitted, as of this report (the call's
    /// `estimated_wait_s`); `None` while the org has too little history.
    pub estimated_wait: Option<Duration>,
    /// Why it can never be admitted as its org is configured now, if so: it
    /// waits until a change of the configuration unblocks it.
    pub blocked: Option<BlockedReason>,
}

impl QueueStatus {
    /// A queued call's status; `None` if it is not queued.
    pub fn of(call: &Call) -> Option<QueueStatus> {
        Some(QueueStatus {
            position: call.position.filter(|_| call.is_queued())?,
            estimated_wait: call
                .estimated_wait_s
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            blocked: call.blocked,
        })
    }
}

impl std::fmt::Debug for Acquire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acquire")
            .field("agent", &self.agent)
            .field("call_type", &self.call_type)
            .field("id", &self.id)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl Acquire {
    /// A call of `agent` and `call_type` with a 60 s lease and no limits on waiting.
    pub fn new(agent: &str, call_type: CallType) -> Acquire {
        Acquire {
            agent: agent.to_string(),
            call_type,
            id: None,
            lease_ttl: Duration::from_secs(60),
            heartbeat_every: None,
            max_wait: None,
            timeout: None,
            if_blocked: None,
            on_queue: None,
        }
    }

    /// Refuses the call (`call_blocked`) rather than queue it blocked.
    pub fn refuse_if_blocked(mut self) -> Acquire {
        self.if_blocked = Some(IfBlocked::Refuse);
        self
    }

    /// Uses this call id (e.g. the telephony provider's call SID).
    pub fn id(mut self, id: &str) -> Acquire {
        self.id = Some(id.to_string());
        self
    }

    /// Sets the lease length.
    pub fn lease_ttl(mut self, ttl: Duration) -> Acquire {
        self.lease_ttl = ttl;
        self
    }

    /// Sets the heartbeat period.
    pub fn heartbeat_every(mut self, every: Duration) -> Acquire {
        self.heartbeat_every = Some(every);
        self
    }

    /// Sets the server-side `max_wait`.
    pub fn max_wait(mut self, wait: Duration) -> Acquire {
        self.max_wait = Some(wait);
        self
    }

    /// Gives up after `timeout` in all.
    pub fn timeout(mut self, timeout: Duration) -> Acquire {
        self.timeout = Some(timeout);
        self
    }

    /// Reports queue positions to `f` (as [`Acquire::on_queue`], the position only).
    pub fn on_position(self, f: impl Fn(u64) + Send + Sync + 'static) -> Acquire {
        self.on_queue(move |q| f(q.position))
    }

    /// Reports the call's place in the queue to `f`: its position and
    /// expected wait, at once and whenever the position changes.
    pub fn on_queue(mut self, f: impl Fn(QueueStatus) + Send + Sync + 'static) -> Acquire {
        self.on_queue = Some(Arc::new(f));
        self
    }
}

fn new_call_id() -> String {
    let mut buf = [0u8; 12];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    format!("call_{hex}")
}

impl Client {
    /// Takes a slot in `org`, waiting through the queue as long as needed (or
    /// until `timeout`), and returns a [`Permit`] that keeps the lease alive
    /// and gives the slot back when released or dropped.
    pub async fn acquire(&self, org: &str, req: Acquire) -> Result<Permit> {
        let id = req.id.clone().unwrap_or_else(new_call_id);
        let deadline = req.timeout.map(|t| Instant::now() + t);
        let wait_for = |deadline: Option<Instant>| {
            deadline.map_or(LONG_POLL, |d| {
                d.saturating_duration_since(Instant::now()).min(LONG_POLL)
            })
        };
        // The first answer comes at once (no wait), so a queued caller hears
        // its position at once; the waits that follow hold its place.
        let body = AcquireCall {
            id: Some(id.clone()),
            lease_ttl_s: Some(req.lease_ttl.as_secs_f64()),
            max_wait_s: req.max_wait.map(|w| w.as_secs_f64()),
            if_blocked: req.if_blocked,
            ..AcquireCall::new(req.agent.clone(), req.call_type)
        };
        let (_, mut call) = self.start_call(org, &body).await?;
        let position = Positions::new(req.on_queue.clone());
        // While queued, calls ahead leave the queue long before a long-poll
        // returns: a watcher of the org's events reports each new position.
        let _watcher = (call.is_queued() && req.on_queue.is_some())
            .then(|| position.watch(self.clone(), org.to_string(), id.clone()));
        loop {
            match call.state {
                CallState::Active => break,
                CallState::Queued => {
                    position.seen(&call);
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        // Cancels it, or frees the slot if it was admitted at the last moment.
                        self.release(org, &id).await?;
                        return Err(Error::Timeout);
                    }
                    call = self.call_info(org, &id, wait_for(deadline)).await?;
                }
                CallState::Ended => return Err(Error::EndedWhileQueued(Box::new(call))),
            }
        }
        Ok(Permit::start(self.clone(), org.to_string(), call, &req))
    }
}

/// The queue positions reported to `on_queue`, each change once.
#[derive(Clone)]
struct Positions {
    report: Option<Arc<dyn Fn(QueueStatus) + Send + Sync>>,
    /// The last position reported. `std` mutex: a compare and a store, no await.
    last: Arc<std::sync::Mutex<Option<u64>>>,
}

/// Aborts the task it holds when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Positions {
    fn new(report: Option<Arc<dyn Fn(QueueStatus) + Send + Sync>>) -> Self {
        Positions {
            report,
            last: Arc::default(),
        }
    }

    /// Reports where `call` stands if its position is new.
    fn seen(&self, call: &Call) {
        let (Some(report), Some(status)) = (&self.report, QueueStatus::of(call)) else {
            return;
        };
        let mut last = self
            .last
            .lock()
            .expect("the position lock is never poisoned");
        if *last != Some(status.position) {
            *last = Some(status.position);
            report(status);
        }
    }

    /// Reads the call again whenever some call of the org is admitted or
    /// ends (which is when positions move), until dropped. Without the
    /// events (a failed stream), the long-polls' answers still report.
    fn watch(&self, client: Client, org: String, id: String) -> AbortOnDrop {
        let positions = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            let Ok(mut events) = client.event_stream(&org, None).await else {
                return;
            };
            // A move between the first answer and the stream's start.
            if let Ok(call) = client.call_info(&org, &id, Duration::ZERO).await {
                positions.seen(&call);
            }
            while let Some(Ok(event)) = events.next().await {
                if matches!(
                    event.kind,
                    EventKind::CallAdmitted { .. } | EventKind::CallEnded { .. }
                ) {
                    match client.call_info(&org, &id, Duration::ZERO).await {
                        Ok(call) if call.is_queued() => positions.seen(&call),
                        _ => return,
                    }
                }
            }
        }))
    }
}

/// A held slot. It heartbeats its lease in the background and gives the slot
/// back on [`Permit::release`] or when dropped. If the lease is lost (the
/// server ended the call), [`Permit::lost`] resolves with the ended call.
#[derive(Debug)]
pub struct Permit {
    client: Client,
    org: String,
    call: Call,
    stop: watch::Sender<bool>,
    lost: watch::Receiver<Option<Call>>,
    released: bool,
}

impl Permit {
    fn start(client: Client, org: String, call: Call, req: &Acquire) -> Permit {
        let (stop, mut stopped) = watch::channel(false);
        let (lost_tx, lost) = watch::channel(None);
        let every = req.heartbeat_every.unwrap_or(req.lease_ttl / 3);
        let (hb_client, hb_org, hb_call) = (client.clone(), org.clone(), call.clone());
        tokio::spawn(async move {
            let mut next = Instant::now() + every;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                match hb_client.heartbeat(&hb_org, &hb_call.id, None).await {
                    Ok(_) => next = Instant::now() + every,
                    Err(Error::Api { error, .. })
                        if matches!(error.code, ErrorCode::CallEnded | ErrorCode::CallNotFound) =>
                    {
                        // A call no longer known ended too; say so with what we knew of it.
                        let ended = error.call.map(|c| *c).unwrap_or_else(|| Call {
                            state: CallState::Ended,
                            end_reason: None,
                            ..hb_call
                        });
                        let _ = lost_tx.send(Some(ended));
                        return;
                    }
                    // Transient or unexpected: try again soon, the lease may still hold.
                    Err(_) => next = Instant::now() + Duration::from_secs(1).min(every),
                }
            }
        });
        Permit {
            client,
            org,
            call,
            stop,
            lost,
            released: false,
        }
    }

    /// The call as it was admitted.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// The call's id.
    pub fn id(&self) -> &str {
        &self.call.id
    }

    /// Has the slot been lost (lease expired or call ended by someone else)?
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Resolves when the slot is lost, with the call as it ended. Never
    /// resolves while the lease is kept alive.
    pub async fn lost(&self) -> Call {
        let mut rx = self.lost.clone();
        let seen = rx.wait_for(Option::is_some).await;
        match seen {
            Ok(call) => call.clone().expect("waited for Some"),
            Err(_) => std::future::pending().await,
        }
    }

    /// Gives the slot back and returns the ended call.
    pub async fn release(mut self) -> Result<Call> {
        self.released = true;
        let _ = self.stop.send(true);
        self.client.release(&self.org, &self.call.id).await
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if self.released {
            return;
        }
        // Give the slot back in the background; the lease would free it anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (client, org, id) = (self.client.clone(), self.org.clone(), self.call.id.clone());
            rt.spawn(async move {
                let _ = client.release(&org, &id).await;
            });
        }
    }
}
