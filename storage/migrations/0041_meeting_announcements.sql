-- Announcements of a new meeting (with RSVP buttons for its next occurrence): which outbox row
-- announces which occurrence in which chat, and, once sent (outbox hook), the Telegram message to edit
-- when the RSVP counts of that occurrence change.
CREATE TABLE meeting_announcements (
    dedup_key   TEXT PRIMARY KEY,                         -- outbox.dedup_key
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    occurrence  TEXT NOT NULL,                            -- original start, UTC
    chat_id     INTEGER NOT NULL,                         -- where it was sent (set again when sent)
    message_id  INTEGER                                   -- NULL until sent
);
CREATE INDEX meeting_announcements_occ ON meeting_announcements(meeting_id, occurrence);
