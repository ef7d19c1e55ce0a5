-- A courier's flag on a station is handled by a moderator from the notice in the moderators' chat
-- (handlers/stations.py): who and when, and what they did ('handled': looked into it; 'deactivated':
-- the station was taken off the lists). Flags already recorded stay open (NULL): nobody handled them.
ALTER TABLE station_flags ADD COLUMN handled_at TEXT;
ALTER TABLE station_flags ADD COLUMN handled_by INTEGER;
ALTER TABLE station_flags ADD COLUMN handled_action TEXT NOT NULL DEFAULT ''
    CHECK (handled_action IN ('', 'handled', 'deactivated'));
