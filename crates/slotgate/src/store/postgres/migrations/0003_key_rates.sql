-- Migration 3: a key's own rate limit, in requests per second (issue 22);
-- NULL: its role's default. It runs inside `migrate`'s
-- transaction.
ALTER TABLE slotgate_keys ADD COLUMN rate_per_s bigint;
