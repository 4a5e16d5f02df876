-- Migration 2: which replica leads (issue 10, several replicas on one
-- database). It runs inside `migrate`'s transaction.
--
-- One row. The replica whose `term` is current applies every change; the
-- others forward requests to its `url`. It renews `renewed_at` (the
-- database's clock) in every transaction it commits and at least once a
-- second; another replica takes over, with `term + 1`, only once
-- `renewed_at` is older than the lease. Every transaction of the leader
-- first updates this row where `term` is still its own, so a replica that
-- lost the lead can never commit a change after its successor started.
-- `backend` is the leader's connection (`pg_backend_pid()`): once it is gone
-- (the leader was killed, or restarted), another replica takes over once the
-- leader has stopped answering from memory (3 s after its last renewal)
-- rather than when the lease runs out.
CREATE TABLE slotgate_leader (
    id integer PRIMARY KEY CHECK (id = 1),
    term bigint NOT NULL,
    holder text NOT NULL,
    url text NOT NULL,
    backend integer NOT NULL,
    renewed_at timestamptz NOT NULL
);
INSERT INTO slotgate_leader (id, term, holder, url, backend, renewed_at) VALUES (1, 0, '', '', 0, 'epoch');
