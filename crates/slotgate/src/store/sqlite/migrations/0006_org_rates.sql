-- Migration: orgs' own request rates (issue 22), for all an org's keys
-- together, set by the operator over the API (`PUT /v1/orgs/{org}/rate`);
-- an org without a row takes the server's setting. It runs inside
-- `migrate`'s transaction.
CREATE TABLE org_rates (
    org TEXT PRIMARY KEY,
    rate_per_s INTEGER NOT NULL
) WITHOUT ROWID;
