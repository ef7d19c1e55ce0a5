-- The wish wall and the monthly rank without reading every row.
--
-- Wall (storage/tasks.py wall_*): the tasks still taking claims are the open/full ones not started
-- yet; these partial indexes hold only open/full tasks, so a page, the counts for the page footer
-- and a nearest search read open tasks' index entries, never a closed task nor a table row.
-- * tasks_wall: soonest first (starts_at, id), covering the claim deadline and whether it has a pin.
-- * tasks_wall_area: the same within one area.
-- * tasks_wall_near: the pinned ones by (lat, lon): a bounding box is one range on lat, filtered on
--   lon, start and deadline inside the index; tasks_wall_near_area: the same within one area.
-- Each ends with `state` although it holds only open/full tasks: SQLite then answers from the index
-- alone (it does not take the partial index's WHERE as a stored column).
-- tasks_open (0030) served only the old full read of the wall: tasks_wall replaces it.
DROP INDEX tasks_open;
CREATE INDEX tasks_wall ON tasks(starts_at, id, claim_deadline, lat, state) WHERE state IN ('open', 'full');
CREATE INDEX tasks_wall_area ON tasks(area, starts_at, id, claim_deadline, lat, state)
WHERE state IN ('open', 'full');
CREATE INDEX tasks_wall_near ON tasks(lat, lon, starts_at, claim_deadline, area, state)
WHERE state IN ('open', 'full') AND lat IS NOT NULL;
CREATE INDEX tasks_wall_near_area ON tasks(area, lat, lon, starts_at, claim_deadline, state)
WHERE state IN ('open', 'full') AND lat IS NOT NULL;

-- Rank (storage/points.py month_*): per month, per user, what the ledger says they earned (every
-- entry but redemptions, corrections included) and when they first earned, overall and per area.
-- The ledger stays the truth: these totals are written by a trigger in the same statement as every
-- ledger row, so they can never disagree with it.
--
-- A month is local time: points_months lists the months the totals are kept for as [start_at,
-- end_at) in UTC, here the months of Asia/Shanghai (the default bot.timezone, UTC+8 all year since
-- 1991) from 2000 to 2100. A ledger row outside every listed month is not totalled. With another
-- time zone the service replaces a month's row and rebuilds its totals from the ledger the first
-- time that month is asked for (storage/points.py build_month), after which the trigger keeps it.
CREATE TABLE points_months (
    start_at        TEXT PRIMARY KEY,
    end_at          TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE points_month_users (
    month_start     TEXT NOT NULL REFERENCES points_months(start_at) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL,
    earned          INTEGER NOT NULL,
    first_at        TEXT NOT NULL,                -- the user's first entry of the month
    PRIMARY KEY (month_start, user_id)
) WITHOUT ROWID;
CREATE INDEX points_month_users_rank ON points_month_users(month_start, earned DESC, first_at, user_id);

CREATE TABLE points_month_areas (
    month_start     TEXT NOT NULL REFERENCES points_months(start_at) ON DELETE CASCADE,
    area            TEXT NOT NULL,
    user_id         INTEGER NOT NULL,
    earned          INTEGER NOT NULL,
    first_at        TEXT NOT NULL,
    PRIMARY KEY (month_start, area, user_id)
) WITHOUT ROWID;
CREATE INDEX points_month_areas_rank ON points_month_areas(month_start, area, earned DESC, first_at, user_id);

-- SQLite-only: MIN(a, b) as a scalar (PostgreSQL: LEAST) and UPSERT inside a trigger.
CREATE TRIGGER points_month_totals AFTER INSERT ON points_ledger WHEN NEW.reason <> 'redeem'
BEGIN
    INSERT INTO points_month_users(month_start, user_id, earned, first_at)
    SELECT start_at, NEW.user_id, NEW.delta, NEW.created_at FROM points_months
    WHERE start_at = (SELECT MAX(start_at) FROM points_months WHERE start_at <= NEW.created_at)
      AND end_at > NEW.created_at
    ON CONFLICT(month_start, user_id) DO UPDATE
    SET earned = earned + excluded.earned, first_at = MIN(first_at, excluded.first_at);
    INSERT INTO points_month_areas(month_start, area, user_id, earned, first_at)
    SELECT start_at, NEW.area, NEW.user_id, NEW.delta, NEW.created_at FROM points_months
    WHERE NEW.area IS NOT NULL
      AND start_at = (SELECT MAX(start_at) FROM points_months WHERE start_at <= NEW.created_at)
      AND end_at > NEW.created_at
    ON CONFLICT(month_start, area, user_id) DO UPDATE
    SET earned = earned + excluded.earned, first_at = MIN(first_at, excluded.first_at);
END;

-- The months of Asia/Shanghai, 2000-01 to 2100-12, as storage.db.to_db writes times.
INSERT INTO points_months(start_at, end_at)
WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 1211)
SELECT strftime('%Y-%m-%dT%H:%M:%S', '2000-01-01', '+' || k || ' months', '-8 hours') || '.000000Z',
       strftime('%Y-%m-%dT%H:%M:%S', '2000-01-01', '+' || (k + 1) || ' months', '-8 hours') || '.000000Z'
FROM n;

-- The ledger rows already there.
INSERT INTO points_month_users(month_start, user_id, earned, first_at)
SELECT m.start_at, l.user_id, SUM(l.delta), MIN(l.created_at)
FROM points_months m JOIN points_ledger l ON l.created_at >= m.start_at AND l.created_at < m.end_at
WHERE l.reason <> 'redeem'
GROUP BY m.start_at, l.user_id;
INSERT INTO points_month_areas(month_start, area, user_id, earned, first_at)
SELECT m.start_at, l.area, l.user_id, SUM(l.delta), MIN(l.created_at)
FROM points_months m JOIN points_ledger l ON l.created_at >= m.start_at AND l.created_at < m.end_at
WHERE l.reason <> 'redeem' AND l.area IS NOT NULL
GROUP BY m.start_at, l.area, l.user_id;
