-- Twin of storage/migrations/0063_leases.sql: the active instance's lease, outbox rows' leases.
CREATE TABLE leader_lease (
    name            TEXT COLLATE "C" PRIMARY KEY,
    holder          TEXT COLLATE "C" NOT NULL,
    until           TEXT COLLATE "C" NOT NULL,
    acquired_at     TEXT COLLATE "C" NOT NULL,
    renewed_at      TEXT COLLATE "C" NOT NULL
);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT COLLATE "C";
ALTER TABLE outbox ADD COLUMN lease_until TEXT COLLATE "C";
