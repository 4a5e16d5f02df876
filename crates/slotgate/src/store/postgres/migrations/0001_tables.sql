-- Migration 1: the tables of the PostgreSQL store (issue 10), after the
-- embedded store's (store/sqlite.rs). It runs inside `migrate`'s transaction.
--
-- Every table is named slotgate_*: the database may be shared with other
-- applications. Times are milliseconds since the Unix epoch (bigint), as the
-- engine's `Timestamp`. Counts are at most slotgate_api::limits::MAX_LIMIT
-- (1,000,000), so `integer` holds them. There are no foreign keys: every
-- change to an org is written in one transaction that holds the org's row
-- lock, after the engine has checked it.

-- One row per org: the row a change to the org locks, its limit, and its
-- version (the seq of its newest event), which a replica compares with the
-- version its in-memory engine has reached.
CREATE TABLE slotgate_orgs (
    id text PRIMARY KEY,
    lim integer NOT NULL CHECK (lim >= 0),
    last_event_seq bigint NOT NULL DEFAULT 0 CHECK (last_event_seq >= 0)
);

-- Each org's ordered event log: seq 1, 2, 3, ... per org, one row each, so
-- two replicas can never append the same seq. `body` is the event as JSON.
CREATE TABLE slotgate_events (
    org text NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    at bigint NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (org, seq)
);
-- For purging events past their retention.
CREATE INDEX slotgate_events_at ON slotgate_events (at);

-- Agents with at least one reserved slot.
CREATE TABLE slotgate_reservations (
    org text NOT NULL,
    agent text NOT NULL,
    webcall integer NOT NULL CHECK (webcall >= 0),
    chat integer NOT NULL CHECK (chat >= 0),
    outbound integer NOT NULL CHECK (outbound >= 0),
    inbound integer NOT NULL CHECK (inbound >= 0),
    PRIMARY KEY (org, agent)
);

-- Calls: queued and active ones, and ended ones for the ended-call retention
-- (idempotent retries, and the observed traffic the planning view reads).
CREATE TABLE slotgate_calls (
    org text NOT NULL,
    id text NOT NULL,
    agent text NOT NULL,
    type text NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'active', 'ended')),
    slot text CHECK (slot IN ('reserved', 'shared')),
    queue_seq bigint,
    queued_at bigint,
    admitted_at bigint,
    lease_ttl_ms bigint NOT NULL CHECK (lease_ttl_ms >= 0),
    max_wait_at bigint,
    ended_at bigint,
    end_reason text,
    PRIMARY KEY (org, id)
);
-- For purging ended calls past their retention.
CREATE INDEX slotgate_calls_ended ON slotgate_calls (ended_at) WHERE state = 'ended';

-- Org keys. Only the SHA-256 of a key is kept, never the key.
CREATE TABLE slotgate_keys (
    id text PRIMARY KEY,
    org text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    created_at bigint NOT NULL
);
CREATE INDEX slotgate_keys_org ON slotgate_keys (org);
