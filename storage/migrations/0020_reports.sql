-- Grievances (诉求, G-0017) and hazard tips (隐患, H-0042): reports, photos, audit trail, supporters,
-- and the moderator-chat card messages (edited when the status changes).

CREATE TABLE reports (
    id                  INTEGER PRIMARY KEY,
    kind                TEXT NOT NULL CHECK (kind IN ('grievance', 'hazard')),
    seq                 INTEGER NOT NULL,             -- per kind: the number in the readable reference
    category            TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    voice_file_id       TEXT,
    lat                 REAL,                         -- WGS-84, as shared by the phone
    lon                 REAL,
    place_text          TEXT,                         -- typed address or place description
    compound            TEXT,                         -- access conflicts: compound / building
    property_company    TEXT,                         -- access conflicts: its property company
    anonymous           INTEGER NOT NULL DEFAULT 0,
    reporter_id         INTEGER NOT NULL,             -- kept for updates even when anonymous; never shown
    area                TEXT,
    origin_chat_id      INTEGER,                      -- group the filing started from, if any
    status              TEXT NOT NULL DEFAULT 'new'
                        CHECK (status IN ('new', 'acknowledged', 'in_progress', 'resolved', 'rejected', 'duplicate')),
    duplicate_of        INTEGER REFERENCES reports(id),
    supporters          INTEGER NOT NULL DEFAULT 0,   -- "+1" voices
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    acknowledged_at     TEXT,
    resolved_at         TEXT,
    reopened_at         TEXT,                         -- last "not solved" by the reporter
    last_escalated_at   TEXT,
    UNIQUE (kind, seq),
    CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX reports_status ON reports(status, created_at);
CREATE INDEX reports_reporter ON reports(reporter_id, created_at);
CREATE INDEX reports_near ON reports(kind, category, status, lat, lon);
CREATE INDEX reports_created ON reports(created_at);

CREATE TABLE report_photos (
    report_id           INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    position            INTEGER NOT NULL,
    file_id             TEXT NOT NULL,
    PRIMARY KEY (report_id, position)
);

-- Audit trail: every submit, status change, reopen, confirmation and "+1".
CREATE TABLE report_events (
    id                  INTEGER PRIMARY KEY,
    report_id           INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    actor_id            INTEGER,
    action              TEXT NOT NULL,                -- submit | ack | progress | resolve | reject | duplicate | reopen | confirm | support
    from_status         TEXT,
    to_status           TEXT,
    note                TEXT,
    at                  TEXT NOT NULL
);
CREATE INDEX report_events_report ON report_events(report_id, id);

CREATE TABLE report_supporters (
    report_id           INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    user_id             INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (report_id, user_id)
);
CREATE INDEX report_supporters_user ON report_supporters(user_id);

-- Cards posted in moderator chats (the first one and each escalation), edited on every change.
CREATE TABLE report_cards (
    report_id           INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    chat_id             INTEGER NOT NULL,
    message_id          INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX report_cards_report ON report_cards(report_id);
