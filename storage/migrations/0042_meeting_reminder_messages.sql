-- A sent meeting reminder keeps its Telegram message in meeting_reminders (recorded by an outbox hook
-- when it is sent), as announcements already do: RSVP answers edit the counts on it until the
-- occurrence ends, which can be after its outbox row is pruned (outbox.keep_days, migration 0002).
ALTER TABLE meeting_reminders ADD COLUMN message_id INTEGER;   -- NULL until sent

-- Backfill: reminders sent before this migration, from their outbox rows (the chat they went to).
UPDATE meeting_reminders
SET chat_id = o.chat_id, message_id = o.message_id
FROM outbox o
WHERE o.dedup_key = meeting_reminders.dedup_key AND o.state = 'sent' AND o.message_id IS NOT NULL;
