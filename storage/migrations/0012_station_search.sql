-- Free-text station search (`/stations 文三路`, plain text in a private chat) without a table scan.
-- What matches stays `name/address/area LIKE '%q%'` (storage/stations.py search_text); these indexes
-- only find the candidates, and pick the cheaper of two ways to list the first ones by name:
--
-- * station_names (name) and station_places (address, area): FTS5 trigram indexes over the ACTIVE
--   stations, contentless (they store only the index; rowid = stations.id). A query of 3+ characters
--   is a phrase of trigrams: exactly the rows containing it (case folded as LIKE does for ASCII).
--   Each text is indexed with two U+E000 characters appended, so that every character of it starts a
--   trigram: a 1-2 character query ("厕所", "文三") is then the range of trigrams beginning with it,
--   read from the fts5vocab tables station_names_terms / station_places_terms.
-- * stations_text: the active stations in (name, id) order, covering address and area: when a query
--   matches many stations, walking it in order finds the first few after a short stretch.
--
-- The triggers keep both FTS tables equal to the active rows: an insert adds a station, an update of
-- name/address/area/active removes the old text and adds the new one (a contentless FTS5 table is
-- told what to remove with the exact text it indexed, which the trigger has in OLD).
-- SQLite-only (FTS5, fts5vocab, char()); PostgreSQL would use pg_trgm GIN indexes instead.

CREATE VIRTUAL TABLE station_names USING fts5(name, content='', tokenize='trigram');
CREATE VIRTUAL TABLE station_places USING fts5(address, area, content='', tokenize='trigram');
CREATE VIRTUAL TABLE station_names_terms USING fts5vocab(station_names, 'instance');
CREATE VIRTUAL TABLE station_places_terms USING fts5vocab(station_places, 'instance');

CREATE INDEX stations_text ON stations(name, id, address, area) WHERE active = 1;

CREATE TRIGGER stations_search_insert AFTER INSERT ON stations WHEN NEW.active = 1
BEGIN
    INSERT INTO station_names(rowid, name) VALUES (NEW.id, NEW.name || char(57344, 57344));
    INSERT INTO station_places(rowid, address, area)
    VALUES (NEW.id, NEW.address || char(57344, 57344), NEW.area || char(57344, 57344));
END;

CREATE TRIGGER stations_search_update AFTER UPDATE OF name, address, area, active ON stations
WHEN OLD.active = 1 OR NEW.active = 1
BEGIN
    INSERT INTO station_names(station_names, rowid, name)
    SELECT 'delete', OLD.id, OLD.name || char(57344, 57344) WHERE OLD.active = 1;
    INSERT INTO station_places(station_places, rowid, address, area)
    SELECT 'delete', OLD.id, OLD.address || char(57344, 57344), OLD.area || char(57344, 57344)
    WHERE OLD.active = 1;
    INSERT INTO station_names(rowid, name)
    SELECT NEW.id, NEW.name || char(57344, 57344) WHERE NEW.active = 1;
    INSERT INTO station_places(rowid, address, area)
    SELECT NEW.id, NEW.address || char(57344, 57344), NEW.area || char(57344, 57344) WHERE NEW.active = 1;
END;

CREATE TRIGGER stations_search_delete AFTER DELETE ON stations WHEN OLD.active = 1
BEGIN
    INSERT INTO station_names(station_names, rowid, name) VALUES ('delete', OLD.id, OLD.name || char(57344, 57344));
    INSERT INTO station_places(station_places, rowid, address, area)
    VALUES ('delete', OLD.id, OLD.address || char(57344, 57344), OLD.area || char(57344, 57344));
END;

-- The stations already there.
INSERT INTO station_names(rowid, name) SELECT id, name || char(57344, 57344) FROM stations WHERE active = 1;
INSERT INTO station_places(rowid, address, area)
SELECT id, address || char(57344, 57344), area || char(57344, 57344) FROM stations WHERE active = 1;
