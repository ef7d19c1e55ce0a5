-- The outbox at millions of rows (issue 12 sections 3-4, issue 13 item 14).
--
-- * state 'unknown': a row that was being sent when the process died (or whose request timed out):
--   Telegram may or may not have it. Terminal, reported as "delivery unknown", never counted as failed.
-- * resend_if_unknown: what the producer chose for that case: 1 = send it again (urgent notices and
--   reminders: a rare duplicate beats a missed typhoon warning), 0 = mark it 'unknown'.
-- * indexes for the paths that run all the time: the fair pick of due rows (outbox_queue), expiry
--   (outbox_expiry), a chat's rows (outbox_chat), all three over pending rows only; the next due time
--   and pruning (outbox_due).
-- * outbox_tombstones / outbox_pruned: what stays of a pruned row (see storage/outbox.py `prune`).
--
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt (one copy of every row).

CREATE TABLE outbox_new (
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
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'cancelled', 'expired', 'skipped',
                                     'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    message_id      INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    resend_if_unknown INTEGER NOT NULL DEFAULT 0 CHECK (resend_if_unknown IN (0, 1))
);

-- Backfill: every row carried over. Reminders resend when their delivery is unknown; so do rows of an
-- urgent broadcast, which the broadcast service marks when it queues them (this migration runs before
-- the broadcasts table exists on a new database, so it cannot look them up).
INSERT INTO outbox_new(id, kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at, state,
                       attempts, last_error, message_id, created_at, updated_at, sent_at, resend_if_unknown)
SELECT id, kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at, state,
       attempts, last_error, message_id, created_at, updated_at, sent_at,
       CASE WHEN kind IN ('meeting_reminder', 'task_reminder') THEN 1 ELSE 0 END
FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

-- Next due time (MIN(due_at) of pending rows) and the prune's scan of old finished rows.
CREATE INDEX outbox_due ON outbox(state, due_at);
-- The fair pick (storage/outbox.py fetch_due): pending rows by priority, then due time, then chat,
-- then id (the walk's order: nothing sorted), and the expiry (the pick reads nothing but this index).
-- Partial: the millions of finished rows are not in it. The indexes over pending rows all start with
-- state (always 'pending' in them): without table statistics SQLite ranks an index by its leading
-- equalities, and would otherwise read every pending row through another one.
CREATE INDEX outbox_queue ON outbox(state, priority, due_at, chat_id, id, expires_at) WHERE state = 'pending';
-- Dropping pending rows past their expiry.
CREATE INDEX outbox_expiry ON outbox(state, expires_at) WHERE state = 'pending';
-- A chat's pending rows (skipped when it became unreachable, re-addressed when it migrated).
CREATE INDEX outbox_chat ON outbox(state, chat_id) WHERE state = 'pending';
CREATE INDEX outbox_batch ON outbox(batch, state);

-- A pruned row's key and final state: a key that was sent (or failed, ...) is never queued again,
-- even after its row is gone; a 'cancelled' one may still be revived (modes revive/replan).
CREATE TABLE outbox_tombstones (
    dedup_key   TEXT PRIMARY KEY,
    state       TEXT NOT NULL
) WITHOUT ROWID;

-- The figures of pruned rows per batch (a broadcast's report stays right after its rows are gone).
CREATE TABLE outbox_pruned (
    batch       TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',         -- last_error of failed/skipped rows, else ''
    count       INTEGER NOT NULL,
    PRIMARY KEY (batch, state, reason)
) WITHOUT ROWID;
