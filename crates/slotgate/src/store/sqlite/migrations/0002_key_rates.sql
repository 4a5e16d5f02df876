-- A key's own rate limit, in requests per second (null: its role's default).
ALTER TABLE keys ADD COLUMN rate_per_s INTEGER;
