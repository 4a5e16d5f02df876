-- Migration 6: usage by hour (issue 23, item 6). One row per org and UTC
-- hour: `hour` is its start in ms since the Unix epoch, `body` the figures
-- as JSON (usage.rs, `Hour`). Written in the group commit's transaction
-- with the events they are derived from; purged after `--usage-retention`.
-- It runs inside `migrate`'s transaction.
CREATE TABLE slotgate_usage (
    org text NOT NULL,
    hour bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, hour)
);
-- For purging hours past their retention.
CREATE INDEX slotgate_usage_hour ON slotgate_usage (hour);
