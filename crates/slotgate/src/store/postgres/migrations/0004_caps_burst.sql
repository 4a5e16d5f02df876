-- Migration 4: version 2's configuration (issue 23). It runs inside
-- `migrate`'s transaction.

-- An org's burst `B`: slots it may use above its limit once the limit is in
-- use (0 unless set).
ALTER TABLE slotgate_orgs ADD COLUMN burst integer NOT NULL DEFAULT 0 CHECK (burst >= 0);

-- Agents' caps: the most active calls per call type and in total, NULL for
-- no cap. An agent with no cap has no row.
CREATE TABLE slotgate_caps (
    org text NOT NULL,
    agent text NOT NULL,
    webcall integer CHECK (webcall >= 0),
    chat integer CHECK (chat >= 0),
    outbound integer CHECK (outbound >= 0),
    inbound integer CHECK (inbound >= 0),
    total integer CHECK (total >= 0),
    PRIMARY KEY (org, agent)
);

-- A call admitted above the limit, within the burst, has slot 'burst'.
ALTER TABLE slotgate_calls DROP CONSTRAINT slotgate_calls_slot_check;
ALTER TABLE slotgate_calls ADD CONSTRAINT slotgate_calls_slot_check
    CHECK (slot IN ('reserved', 'shared', 'burst'));
