-- Migration 3: version 2's configuration (issue 23). An org's burst `B`
-- (slots above its limit, 0 unless set), and agents' caps: the most active
-- calls per call type and in total, NULL for no cap. An agent with no cap
-- has no row. It runs inside `migrate`'s transaction.
ALTER TABLE orgs ADD COLUMN burst INTEGER NOT NULL DEFAULT 0;
CREATE TABLE caps (
    org TEXT NOT NULL, agent TEXT NOT NULL,
    webcall INTEGER, chat INTEGER, outbound INTEGER, inbound INTEGER, total INTEGER,
    PRIMARY KEY (org, agent)
) WITHOUT ROWID;
