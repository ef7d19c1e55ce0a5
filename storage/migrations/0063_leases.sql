-- Two instances on one database (issue 15): exactly one is active, by a lease it renews.
-- `holder` names the process (host:pid:random); `until` is when the lease lapses unless renewed.
CREATE TABLE leader_lease (
    name            TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,
    until           TEXT NOT NULL,
    acquired_at     TEXT NOT NULL,
    renewed_at      TEXT NOT NULL
);
-- An outbox row being sent is leased to the process sending it: its delivery is in doubt only once
-- the lease lapsed (the process died mid-request), never while another live instance sends it.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
