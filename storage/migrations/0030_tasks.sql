-- Wish wall (心愿墙): volunteer tasks, their claims, the group cards showing them, and redeem codes
-- for the one points ledger (points_ledger, 0001). Times are UTC text (storage.db.to_db).

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    starts_at       TEXT NOT NULL,
    ends_at         TEXT,
    place_text      TEXT NOT NULL DEFAULT '',
    lat             REAL,                         -- WGS-84, as a Telegram location
    lon             REAL,
    area            TEXT,
    slots           INTEGER NOT NULL CHECK (slots >= 1),
    points          INTEGER NOT NULL DEFAULT 0 CHECK (points >= 0),
    claim_deadline  TEXT,                         -- NULL = claims until the start
    private_details TEXT,                         -- shown only to claimers holding a slot
    created_by      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'full', 'closed', 'cancelled', 'completed')),
    version         INTEGER NOT NULL DEFAULT 0,   -- bumped on every change (card edits, event keys)
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX tasks_open ON tasks(state, starts_at);

CREATE TABLE task_claims (
    id              INTEGER PRIMARY KEY,
    task_id         INTEGER NOT NULL REFERENCES tasks(id),
    user_id         INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN (
                        'claimed', 'waitlisted', 'assigned_pending', 'withdrawn', 'declined', 'done', 'no_show')),
    position        INTEGER,                      -- waitlist order (lower first); NULL otherwise
    confirmed       INTEGER NOT NULL DEFAULT 0,   -- 1 after "我会到"
    assigned_by     INTEGER,                      -- the captain who assigned it, if any
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (task_id, user_id)
);
CREATE INDEX task_claims_user ON task_claims(user_id, state);
CREATE INDEX task_claims_task ON task_claims(task_id, state, position);

-- Task cards posted into groups; edited as slots fill or the task closes.
CREATE TABLE task_cards (
    task_id         INTEGER NOT NULL REFERENCES tasks(id),
    chat_id         INTEGER NOT NULL,
    message_id      INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (task_id, chat_id, message_id)
);

-- One-time codes a courier shows at a station to redeem points.
CREATE TABLE redeem_codes (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL,                -- 6 digits; unique among live (unused, unexpired) codes
    user_id         INTEGER NOT NULL,
    points          INTEGER NOT NULL CHECK (points > 0),
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    used_by         INTEGER,                      -- the moderator / station keeper who confirmed it
    created_at      TEXT NOT NULL
);
CREATE INDEX redeem_codes_code ON redeem_codes(code, used_at);
CREATE INDEX redeem_codes_user ON redeem_codes(user_id, used_at);
