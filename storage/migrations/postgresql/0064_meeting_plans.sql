-- Twin of storage/migrations/0064_meeting_plans.sql: what each meeting's reminders were planned from.
CREATE TABLE meeting_plans (
    meeting_id      BIGINT PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
    signature       TEXT COLLATE "C" NOT NULL,
    occurrences     TEXT COLLATE "C" NOT NULL,
    planned_at      TEXT COLLATE "C" NOT NULL
);
