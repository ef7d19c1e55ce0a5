-- What each meeting's reminders were last planned from (issue #12): a digest of every input of the
-- plan (the meeting, its chats, RSVP counts and topics of the occurrences planned, the organizer's
-- language, the texts and settings) and those occurrences. The daily re-plan of a meeting whose
-- digest is unchanged renders and compares nothing: it only plans occurrences new in its horizon.
CREATE TABLE meeting_plans (
    meeting_id      INTEGER PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
    signature       TEXT NOT NULL,
    occurrences     TEXT NOT NULL,                        -- original starts planned, epoch minutes
    planned_at      TEXT NOT NULL
);
