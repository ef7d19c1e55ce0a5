-- The moderators' desk can undo the last decision on a report: the undone event is marked with the
-- id of the 'undo' event that took it back (NULL = stands). Existing events all stand.
ALTER TABLE report_events ADD COLUMN undone_by INTEGER REFERENCES report_events(id);
-- The desk (storage/desk.py, measured in bench/scale/desk.py): an area's open reports, longest
-- waiting first (board columns, map, the week's counts by status); an area's and everyone's reports
-- closed in the last days, latest first (board columns); deliveries of a kind in a week (the digest).
CREATE INDEX reports_area_open ON reports(area, status, created_at);
CREATE INDEX reports_area_closed ON reports(area, status, updated_at);
CREATE INDEX reports_status_updated ON reports(status, updated_at);
CREATE INDEX outbox_kind_sent ON outbox(kind, sent_at);
