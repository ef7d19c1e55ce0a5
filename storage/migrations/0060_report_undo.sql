-- The moderators' desk can undo the last decision on a report: the undone event is marked with the
-- id of the 'undo' event that took it back (NULL = stands). Existing events all stand.
ALTER TABLE report_events ADD COLUMN undone_by INTEGER REFERENCES report_events(id);
-- The desk's board reads every open report and those closed within a week, by area or for all areas
-- (bench/scale/desk.py); the week's figures count deliveries by kind.
CREATE INDEX reports_area_status ON reports(area, status, updated_at);
CREATE INDEX reports_status_updated ON reports(status, updated_at);
CREATE INDEX outbox_kind_sent ON outbox(kind, sent_at);
