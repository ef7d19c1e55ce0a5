-- Core schema: people, groups, roles, PTB persistence, the one outbox and the one points ledger.
-- Times are UTC text written by storage.db.to_db (fixed width, sortable).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,          -- Telegram user id
    first_name      TEXT NOT NULL DEFAULT '',
    last_name       TEXT NOT NULL DEFAULT '',
    username        TEXT,
    language_code   TEXT,                         -- as Telegram reports it
    lang            TEXT,                         -- chosen with /lang; NULL = follow language_code
    private_chat    INTEGER NOT NULL DEFAULT 0,   -- 1 once the user opened a private chat with the bot
    blocked         INTEGER NOT NULL DEFAULT 0,   -- 1 after Telegram answered 403 for the private chat
    subscribed      INTEGER NOT NULL DEFAULT 1,   -- private-chat notices (/unsubscribe sets 0)
    area            TEXT,                         -- the courier's own area tag, optional
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL
);

CREATE TABLE groups (
    chat_id         INTEGER PRIMARY KEY,
    title           TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL,                -- group | supergroup | channel
    area            TEXT,
    active          INTEGER NOT NULL DEFAULT 1,   -- bot is a member and may send
    bot_status      TEXT NOT NULL DEFAULT 'member',
    can_pin         INTEGER NOT NULL DEFAULT 0,
    migrated_to     INTEGER,
    added_at        TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX groups_area ON groups(area, active);

CREATE TABLE roles (
    user_id         INTEGER NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('moderator', 'captain', 'station_keeper')),
    area            TEXT NOT NULL DEFAULT '',     -- '' = every area
    granted_by      INTEGER,
    granted_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, role, area)
);

-- python-telegram-bot persistence (JSON, no pickle).
CREATE TABLE ptb_conversations (
    name            TEXT NOT NULL,
    key             TEXT NOT NULL,                -- JSON array of the conversation key
    state           TEXT NOT NULL,                -- JSON
    PRIMARY KEY (name, key)
);
CREATE TABLE ptb_user_data (user_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE ptb_chat_data (chat_id INTEGER PRIMARY KEY, data TEXT NOT NULL);

-- The one outbox: everything that must be sent later, or sent to many, is a row first.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,                -- renderer name, e.g. 'broadcast', 'meeting_reminder'
    dedup_key       TEXT NOT NULL UNIQUE,         -- the same thing is never queued twice
    chat_id         INTEGER NOT NULL,
    payload         TEXT NOT NULL,                -- JSON given to the renderer
    batch           TEXT,                         -- groups rows, e.g. 'broadcast:12'
    priority        INTEGER NOT NULL DEFAULT 5,   -- lower goes first
    due_at          TEXT NOT NULL,
    expires_at      TEXT,                         -- not sent by then -> 'expired'
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'cancelled', 'expired', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    message_id      INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox(state, due_at, priority);
CREATE INDEX outbox_batch ON outbox(batch, state);

-- The one points ledger (志愿分): append-only; a balance is the sum of a user's rows.
CREATE TABLE points_ledger (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    delta           INTEGER NOT NULL CHECK (delta <> 0),
    reason          TEXT NOT NULL,                -- task_done | report_valid | adjust | redeem
    ref             TEXT,                         -- e.g. 'task:12', 'report:H-0042', 'redeem:ab12'
    note            TEXT,
    area            TEXT,
    actor_id        INTEGER,
    idem_key        TEXT UNIQUE,                  -- credits the same thing only once
    created_at      TEXT NOT NULL
);
CREATE INDEX points_user ON points_ledger(user_id, created_at);
CREATE INDEX points_created ON points_ledger(created_at);

CREATE TRIGGER points_ledger_no_update BEFORE UPDATE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
CREATE TRIGGER points_ledger_no_delete BEFORE DELETE ON points_ledger
BEGIN SELECT RAISE(ABORT, 'points_ledger is append-only'); END;
