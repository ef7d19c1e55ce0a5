-- Reports at scale: the moderators' list reads an index in its own order, and the numbers it shows
-- (how many reports match, the access-conflict hotspots) are kept on write instead of counted by
-- reading every report of an area. storage/reports.py keeps both tables in step in the same
-- transaction as the insert or status change; the rows below carry over what is already stored.

-- /reports: one ordered range per (status, area), merged; rowid (= id) breaks ties in index order.
CREATE INDEX reports_status_area ON reports(status, area, created_at);

-- Hotspot groups: finding a group's latest report again when one of its reports becomes a duplicate.
CREATE INDEX reports_place ON reports(compound, property_company, created_at);

-- How many reports of each kind, category, area and status ('' = no area).
CREATE TABLE report_counts (
    status      TEXT NOT NULL,
    area        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    category    TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (status, area, kind, category)
);
INSERT INTO report_counts(status, area, kind, category, n)
SELECT status, COALESCE(area, ''), kind, category, COUNT(*)
FROM reports GROUP BY status, COALESCE(area, ''), kind, category;

-- Grievances naming a compound or a property company, grouped as the hotspots show them
-- (trimmed, '' = not given; duplicates are left out): how many, how many still open, the latest;
-- per area ('' = none) and over all areas, each ranked by an index (the hotspots' order).
CREATE TABLE report_hotspots (
    category          TEXT NOT NULL,
    area              TEXT NOT NULL,
    compound          TEXT NOT NULL,
    property_company  TEXT NOT NULL,
    total             INTEGER NOT NULL,
    open              INTEGER NOT NULL,
    last_at           TEXT,
    PRIMARY KEY (category, area, compound, property_company)
);
CREATE INDEX report_hotspots_rank ON report_hotspots(category, area, total, open, last_at);
INSERT INTO report_hotspots(category, area, compound, property_company, total, open, last_at)
SELECT category, COALESCE(area, ''), TRIM(COALESCE(compound, '')), TRIM(COALESCE(property_company, '')),
       COUNT(*), SUM(CASE WHEN status IN ('new', 'acknowledged', 'in_progress') THEN 1 ELSE 0 END),
       MAX(created_at)
FROM reports
WHERE kind = 'grievance' AND status <> 'duplicate'
  AND (TRIM(COALESCE(compound, '')) <> '' OR TRIM(COALESCE(property_company, '')) <> '')
GROUP BY category, COALESCE(area, ''), TRIM(COALESCE(compound, '')), TRIM(COALESCE(property_company, ''));

CREATE TABLE report_hotspot_totals (
    category          TEXT NOT NULL,
    compound          TEXT NOT NULL,
    property_company  TEXT NOT NULL,
    total             INTEGER NOT NULL,
    open              INTEGER NOT NULL,
    last_at           TEXT,
    PRIMARY KEY (category, compound, property_company)
);
CREATE INDEX report_hotspot_totals_rank ON report_hotspot_totals(category, total, open, last_at);
INSERT INTO report_hotspot_totals(category, compound, property_company, total, open, last_at)
SELECT category, compound, property_company, SUM(total), SUM(open), MAX(last_at)
FROM report_hotspots GROUP BY category, compound, property_company;
