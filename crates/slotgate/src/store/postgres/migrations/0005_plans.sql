-- Migration 5: plans (issue 23). A plan is an operator-defined tier of
-- limit and burst; an org on one takes them unless it sets its own. A new
-- database starts with `standard` (20, burst 0) and `enterprise` (100,
-- burst 20), which the operator may change or delete. `slotgate_plan_events`
-- keeps the operator's `plan.changed` events. It runs inside `migrate`'s
-- transaction.
CREATE TABLE slotgate_plans (
    id text PRIMARY KEY,
    lim integer NOT NULL CHECK (lim >= 0),
    burst integer NOT NULL CHECK (burst >= 0)
);
INSERT INTO slotgate_plans (id, lim, burst) VALUES ('standard', 20, 0), ('enterprise', 100, 20);
CREATE TABLE slotgate_plan_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at bigint NOT NULL,
    body jsonb NOT NULL
);
ALTER TABLE slotgate_orgs ADD COLUMN plan text;
ALTER TABLE slotgate_orgs ADD COLUMN limit_from_plan boolean NOT NULL DEFAULT false;
ALTER TABLE slotgate_orgs ADD COLUMN burst_from_plan boolean NOT NULL DEFAULT false;
