//! An org's call ids: id -> key in its call table.
//!
//! The table stores only the 4-byte key; the id itself lives once, in the call
//! record, and is read from there to compare and to rehash. This halves the
//! index's memory per call against a `HashMap<CallId, u32>`.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;

use crate::call::Call;

/// Call id -> call key.
#[derive(Default)]
pub(crate) struct CallIndex {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for CallIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallIndex")
            .field("len", &self.table.len())
            .finish()
    }
}

impl CallIndex {
    /// The hash of an id; compute it once per command and pass it on.
    pub(crate) fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The key of the call with this id.
    pub(crate) fn find(&self, calls: &Slab<Call>, hash: u64, id: &str) -> Option<u32> {
        self.table
            .find(hash, |&k| calls[k as usize].id.as_str() == id)
            .copied()
    }

    /// Files `key`, whose call (already in `calls`) has an id of this hash and not yet filed.
    pub(crate) fn insert(&mut self, calls: &Slab<Call>, hash: u64, key: u32) {
        let hasher = &self.hasher;
        self.table.insert_unique(hash, key, |&k| {
            hasher.hash_one(calls[k as usize].id.as_str())
        });
    }

    /// Unfiles `key`, whose id has this hash.
    pub(crate) fn remove(&mut self, hash: u64, key: u32) {
        if let Ok(entry) = self.table.find_entry(hash, |&k| k == key) {
            entry.remove();
        }
    }
}
