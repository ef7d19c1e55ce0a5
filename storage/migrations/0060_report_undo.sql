-- The moderators' desk can undo the last decision on a report: the undone event is marked with the
-- id of the 'undo' event that took it back (NULL = stands). Existing events all stand.
ALTER TABLE report_events ADD COLUMN undone_by INTEGER REFERENCES report_events(id);
-- The desk (storage/desk.py, measured in bench/scale/desk.py): the reports closed in the last days,
-- latest first, of some areas and of all (board columns; the open ones come from reports_status_area);
-- deliveries of a kind in a week (the week's figures).
CREATE INDEX reports_closed_area ON reports(status, area, updated_at);
CREATE INDEX reports_status_updated ON reports(status, updated_at);
CREATE INDEX outbox_kind_sent ON outbox(kind, sent_at);
