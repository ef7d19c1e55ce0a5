-- Council meetings (议事会): schedule, targets, single-occurrence overrides, RSVPs, agenda topics and
-- the link from planned reminders (outbox rows) to the meeting occurrence they announce.
-- An "occurrence" is identified by its ORIGINAL start in UTC (stable when that occurrence is moved).

CREATE TABLE meetings (
    id                      INTEGER PRIMARY KEY,
    title                   TEXT NOT NULL,
    place                   TEXT NOT NULL DEFAULT '',
    lat                     REAL,                         -- WGS-84, optional
    lon                     REAL,
    tz                      TEXT NOT NULL,                -- IANA zone of the schedule
    dtstart_local           TEXT NOT NULL,                -- first start, wall time in tz: 2026-01-05T14:30:00
    duration_minutes        INTEGER NOT NULL CHECK (duration_minutes > 0),
    rrule                   TEXT,                         -- RFC 5545 RRULE value; NULL = a single meeting
    reminder_offsets        TEXT NOT NULL DEFAULT '[1440, 60]',  -- JSON list of minutes before the start
    topic_deadline_minutes  INTEGER NOT NULL DEFAULT 1200,       -- topics close this long before the start
    organizer_id            INTEGER NOT NULL,
    state                   TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    revision                INTEGER NOT NULL DEFAULT 0,   -- bumped on every change (.ics SEQUENCE, notices)
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX meetings_state ON meetings(state);

-- Where a meeting is announced: a chat, or every active group of an area (resolved when planning).
CREATE TABLE meeting_targets (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    chat_id     INTEGER,
    area        TEXT,
    CHECK ((chat_id IS NULL) <> (area IS NULL))
);
CREATE UNIQUE INDEX meeting_targets_chat ON meeting_targets(meeting_id, chat_id) WHERE chat_id IS NOT NULL;
CREATE UNIQUE INDEX meeting_targets_area ON meeting_targets(meeting_id, area) WHERE area IS NOT NULL;
CREATE INDEX meeting_targets_by_chat ON meeting_targets(chat_id);
CREATE INDEX meeting_targets_by_area ON meeting_targets(area);

-- One occurrence skipped (EXDATE) or moved (RECURRENCE-ID override); keyed by its original start.
CREATE TABLE meeting_overrides (
    meeting_id      INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    original_start  TEXT NOT NULL,                        -- UTC
    action          TEXT NOT NULL CHECK (action IN ('skip', 'move')),
    new_start       TEXT,                                 -- UTC, for 'move'
    created_at      TEXT NOT NULL,
    PRIMARY KEY (meeting_id, original_start),
    CHECK ((action = 'move') = (new_start IS NOT NULL))
);

CREATE TABLE meeting_rsvps (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    occurrence  TEXT NOT NULL,                            -- original start, UTC
    user_id     INTEGER NOT NULL,
    answer      TEXT NOT NULL CHECK (answer IN ('yes', 'no', 'maybe')),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (meeting_id, occurrence, user_id)
);

CREATE TABLE meeting_topics (
    id          INTEGER PRIMARY KEY,
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    occurrence  TEXT NOT NULL,                            -- original start, UTC
    user_id     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX meeting_topics_occ ON meeting_topics(meeting_id, occurrence, id);

-- Planned reminders: which outbox row announces which occurrence in which chat. Once the row is
-- sent, outbox.message_id tells which Telegram message to edit when the RSVP counts change.
CREATE TABLE meeting_reminders (
    dedup_key       TEXT PRIMARY KEY,                     -- outbox.dedup_key
    meeting_id      INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    occurrence      TEXT NOT NULL,                        -- original start, UTC
    chat_id         INTEGER NOT NULL,
    offset_minutes  INTEGER NOT NULL
);
CREATE INDEX meeting_reminders_occ ON meeting_reminders(meeting_id, occurrence);
