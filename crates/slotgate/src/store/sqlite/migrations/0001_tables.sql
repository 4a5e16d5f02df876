-- Migration 1: the tables of the embedded store, as every release before
-- numbered migrations made them. It runs inside `migrate`'s transaction.
--
-- `IF NOT EXISTS` here only: a data directory written before numbered
-- migrations has these tables already and schema version 0, and this
-- migration then only records version 1. Later migrations change what they
-- find, plainly.
CREATE TABLE IF NOT EXISTS orgs (
    id TEXT PRIMARY KEY, lim INTEGER NOT NULL, last_event_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reservations (
    org TEXT NOT NULL, agent TEXT NOT NULL,
    webcall INTEGER NOT NULL, chat INTEGER NOT NULL, outbound INTEGER NOT NULL, inbound INTEGER NOT NULL,
    PRIMARY KEY (org, agent)
);
CREATE TABLE IF NOT EXISTS calls (
    org TEXT NOT NULL, id TEXT NOT NULL, agent TEXT NOT NULL, type TEXT NOT NULL,
    state TEXT NOT NULL, slot TEXT, queue_seq INTEGER, queued_at INTEGER, admitted_at INTEGER,
    lease_ttl_ms INTEGER NOT NULL, max_wait_at INTEGER, ended_at INTEGER, end_reason TEXT,
    PRIMARY KEY (org, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_ended ON calls (ended_at) WHERE state = 'ended';
CREATE TABLE IF NOT EXISTS events (
    org TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (org, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    hash BLOB NOT NULL, created_at INTEGER NOT NULL
);
