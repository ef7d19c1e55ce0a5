-- Warm stations and courier flags on them.
-- Coordinates are WGS-84 degrees. Nearest queries use stations_near: a partial B-tree index on
-- (latitude cell, lon, lat, facility_mask) over the active stations. A latitude cell is 0.01 degree
-- (~1.1 km) tall; a box query is one index range seek on lon per cell (`lat_cell IN (...) AND lon
-- BETWEEN ...`), ranked inside the covering index without touching the table. Measured against an
-- R*Tree with auxiliary columns (see bench/RESULTS.md) it reads a candidate ~8x faster, loads 1M rows
-- ~4x faster, needs no sync triggers and is plain B-tree SQL that ports to PostgreSQL (with floor() in lat_cell).

CREATE TABLE stations (
    id              INTEGER PRIMARY KEY,
    external_id     TEXT NOT NULL UNIQUE,          -- id in the source list; derived when it has none
    name            TEXT NOT NULL CHECK (name <> ''),
    kind            TEXT NOT NULL DEFAULT 'station',
    lat             REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    address         TEXT NOT NULL DEFAULT '',
    opening_hours   TEXT NOT NULL DEFAULT '',      -- OSM opening_hours subset (bot/opening_hours.py); '' = unknown
    facilities      TEXT NOT NULL DEFAULT '',      -- comma-joined facility codes (bot/facilities.py)
    facility_mask   INTEGER NOT NULL DEFAULT 0,    -- the same as bits, for filtering in the index
    phone           TEXT NOT NULL DEFAULT '',
    area            TEXT NOT NULL DEFAULT '',      -- area tag, e.g. 蒋村街道
    source          TEXT NOT NULL DEFAULT '',      -- import file name, 'bot' for chat edits
    demo            INTEGER NOT NULL DEFAULT 0,
    active          INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    lat_cell        INTEGER GENERATED ALWAYS AS (CAST((lat + 90.0) * 100.0 AS INTEGER)) STORED
);
CREATE INDEX stations_near ON stations(lat_cell, lon, lat, facility_mask) WHERE active = 1;
CREATE INDEX stations_area ON stations(area, active);

CREATE TABLE station_flags (
    id              INTEGER PRIMARY KEY,
    station_id      INTEGER NOT NULL REFERENCES stations(id),
    user_id         INTEGER NOT NULL,
    reason          TEXT NOT NULL CHECK (reason IN ('closed', 'moved', 'broken', 'other')),
    note            TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL
);
CREATE INDEX station_flags_station ON station_flags(station_id, created_at);
CREATE INDEX station_flags_user ON station_flags(user_id, station_id, created_at);
