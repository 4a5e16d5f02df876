-- Migration 5: usage by hour (issue 23, item 6). One row per org and UTC
-- hour: `hour` is its start in ms since the Unix epoch, `body` the figures
-- as JSON (usage.rs, `Hour`). Written in the group commit's transaction
-- with the events they are derived from; purged after `--usage-retention`.
-- It runs inside `migrate`'s transaction.
CREATE TABLE usage (
    org TEXT NOT NULL,
    hour INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (org, hour)
) WITHOUT ROWID;
CREATE INDEX usage_hour ON usage (hour);
