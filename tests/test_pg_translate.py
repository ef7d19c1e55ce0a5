"""storage/pg.py: statements in SQLite's spelling as PostgreSQL reads them (no server needed)."""

import pytest

from storage.pg import _statement, to_dollar


@pytest.mark.parametrize(
    ("sqlite", "postgresql"),
    [
        ("SELECT a FROM t WHERE a = ? AND b = '?'", "SELECT a FROM t WHERE a = $1 AND b = '?'"),
        ("SELECT ?2, ?1, ?2", "SELECT $2, $1, $2"),
        ("WHERE x IS NOT ? AND y IS z", "WHERE x IS DISTINCT FROM $1 AND y IS NOT DISTINCT FROM z"),
        (
            "WHERE x IS NOT NULL AND y IS NULL AND z IS TRUE",
            "WHERE x IS NOT NULL AND y IS NULL AND z IS TRUE",
        ),
        ("INSERT OR IGNORE INTO t(a) VALUES (?)", "INSERT INTO t(a) VALUES ($1) ON CONFLICT DO NOTHING"),
        (
            "INSERT OR IGNORE INTO t(a) VALUES (?) RETURNING id",
            "INSERT INTO t(a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id",
        ),
        ("SELECT id FROM t INDEXED BY t_ix WHERE +k >= ?", "SELECT id FROM t  WHERE k >= $1"),
        ("SELECT a + b, x::text FROM t", "SELECT a + b, x::text FROM t"),
        (
            "SELECT COUNT(*) FROM (SELECT id FROM t LIMIT ?)",
            "SELECT COUNT(*) FROM (SELECT id FROM t LIMIT $1) AS _sub1",
        ),
        ("SELECT n FROM (SELECT 1 AS n) AS named", "SELECT n FROM (SELECT 1 AS n) AS named"),
        ("SELECT 'FROM (' FROM t", "SELECT 'FROM (' FROM t"),
        # A comment is kept as written: its '?' is no parameter, its "is" no comparison.
        (
            "SELECT a -- is this one? yes: it is\nFROM t WHERE a = ?",
            "SELECT a -- is this one? yes: it is\nFROM t WHERE a = $1",
        ),
    ],
)
def test_spellings(sqlite, postgresql):
    assert to_dollar(sqlite) == postgresql


def test_named_parameters_in_order_of_first_use():
    text, args = _statement("SELECT :b, :a, :b", {"a": 1, "b": 2})
    assert (text, args) == ("SELECT $1, $2, $1", (2, 1))
    with pytest.raises(TypeError):
        _statement("SELECT :a", (1,))
    with pytest.raises(ValueError):
        to_dollar("SELECT :a, ?")
