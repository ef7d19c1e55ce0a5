-- Broadcast notices: one row per notice; its deliveries are outbox rows with batch = 'bc:<id>'.
CREATE TABLE broadcasts (
    id                  INTEGER PRIMARY KEY,
    author_id           INTEGER NOT NULL,
    text                TEXT NOT NULL DEFAULT '',
    photo_file_id       TEXT,
    audience            TEXT NOT NULL CHECK (audience IN ('groups', 'areas', 'subscribers')),
    areas               TEXT NOT NULL DEFAULT '[]',       -- JSON list of area tags
    urgent              INTEGER NOT NULL DEFAULT 0,
    pin                 INTEGER NOT NULL DEFAULT 0,
    state               TEXT NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'sending', 'done', 'cancelled')),
    requested_at        TEXT,                             -- the time the moderator asked for (NULL = now)
    send_at             TEXT NOT NULL,                    -- after holding for rush windows
    total               INTEGER NOT NULL DEFAULT 0,
    progress_chat_id    INTEGER,
    progress_message_id INTEGER,
    lang                TEXT NOT NULL DEFAULT 'zh',
    created_at          TEXT NOT NULL,
    finished_at         TEXT
);
CREATE INDEX broadcasts_recent ON broadcasts(created_at);
