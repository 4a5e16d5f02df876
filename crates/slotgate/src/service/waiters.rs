//! Long-polls waiting for a call to leave the queue, woken when it changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use slotgate_core::{CallId, OrgId};
use tokio::sync::Notify;

/// Who waits on which call.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    /// One `Notify` per waited call. `std` mutex: map updates only, no await.
    map: Mutex<HashMap<(OrgId, CallId), Arc<Notify>>>,
}

/// A registration; dropping it unregisters.
#[derive(Debug)]
pub(super) struct WaitGuard<'a> {
    waiters: &'a Waiters,
    key: (OrgId, CallId),
    /// Notified when the call is admitted or ends.
    pub(super) notify: Arc<Notify>,
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<(OrgId, CallId), Arc<Notify>>> {
        self.map.lock().expect("the waiters lock is never poisoned")
    }

    /// Registers interest in a call.
    pub(super) fn register(&self, org: OrgId, call: CallId) -> WaitGuard<'_> {
        let key = (org, call);
        let notify = self.map().entry(key.clone()).or_default().clone();
        WaitGuard {
            waiters: self,
            key,
            notify,
        }
    }

    /// Wakes everyone waiting on a call.
    pub(super) fn wake(&self, org: &OrgId, call: &CallId) {
        let notify = self.map().get(&(org.clone(), call.clone())).cloned();
        if let Some(n) = notify {
            n.notify_waiters();
        }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        // The map's and ours: nobody else waits on this call.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.key);
        }
    }
}
