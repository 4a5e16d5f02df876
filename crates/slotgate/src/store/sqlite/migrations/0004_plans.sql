-- Migration 4: plans (issue 23). A plan is an operator-defined tier of
-- limit and burst; an org on one takes them unless it sets its own. A new
-- store starts with `standard` (20, burst 0) and `enterprise` (100, burst
-- 20), which the operator may change or delete. `plan_events` keeps the
-- operator's `plan.changed` events. It runs inside `migrate`'s transaction.
CREATE TABLE plans (
    id TEXT PRIMARY KEY, lim INTEGER NOT NULL, burst INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO plans (id, lim, burst) VALUES ('standard', 20, 0), ('enterprise', 100, 20);
CREATE TABLE plan_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, body TEXT NOT NULL
);
ALTER TABLE orgs ADD COLUMN plan TEXT;
ALTER TABLE orgs ADD COLUMN limit_from_plan INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN burst_from_plan INTEGER NOT NULL DEFAULT 0;
