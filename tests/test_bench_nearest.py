"""bench/bench_nearest.py keeps working: its in-memory anchors answer exactly as ours (a small run;
the full one is in bench/RESULTS.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_nearest.py"
    spec = importlib.util.spec_from_file_location("bench_nearest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_anchors_rank_by_distance_then_station_id_within_the_radius():
    bench = _bench()
    # Rows 0..3 at one spot (station ids in reverse), row 4 2.9 km north, row 5 3.1 km north,
    # row 6 2.9 km east.
    north = np.degrees(np.array([2900.0, 3100.0]) / bench.EARTH_RADIUS_M)
    east = np.degrees(2900.0 / bench.EARTH_RADIUS_M / np.cos(np.radians(30.0)))
    lat = np.array([30.0, 30.0, 30.0, 30.0, 30.0 + north[0], 30.0 + north[1], 30.0])
    lon = np.array([120.0, 120.0, 120.0, 120.0, 120.0, 120.0, 120.0 + east])
    station_id = np.array([40, 30, 20, 10, 50, 60, 70])
    for cls in bench.ANCHORS:
        anchor = cls(lat, lon, station_id)
        assert anchor.query(30.0, 120.0) == [3, 2, 1, 0, 6], cls.name  # 2.9 km east is nearer than north
        assert anchor.query(30.0 + north[0], 120.0)[:1] == [4], cls.name
        assert anchor.query(35.0, 120.0) == [], cls.name


@pytest.mark.parametrize("layout", ["uniform", "clustered"])
async def test_small_run_agrees_with_ours(tmp_path, layout, monkeypatch, capsys):
    bench = _bench()
    monkeypatch.setattr(bench, "MIN_QPS_SECONDS", 0.0)
    r = await bench.run_one(3000, layout, 120, tmp_path, 1, 2)
    assert [a["name"] for a in r["anchors"]] == ["full scan", "lat band", "KD-tree"]
    for a in r["anchors"]:
        assert a["agree"] == (120, 120), a["name"]
        assert a["answers_threads"] == a["answers"], a["name"]
    assert r["agree_geo"] == (1, 1)
    assert r["found_avg"] > 0
    bench.print_scenario(r, 2)
    bench.print_table([r], 2)
    assert bench.print_summary([r])
    out = capsys.readouterr().out
    assert "KD-tree (in memory)" in out and "answers agree" in out


def test_anchors_rank_closed_stations_as_the_bot_does():
    bench = _bench()
    # Row 0 closed at 300 m, row 1 open at 900 m, row 2 open at 2000 m (all north).
    north = np.degrees(np.array([300.0, 900.0, 2000.0]) / bench.EARTH_RADIUS_M)
    lat, lon = 30.0 + north, np.full(3, 120.0)
    closed = np.array([True, False, False])
    for cls in bench.ANCHORS:
        assert cls(lat, lon, np.array([1, 2, 3]), closed).query(30.0, 120.0) == [1, 0, 2], cls.name
        assert cls(lat, lon, np.array([1, 2, 3])).query(30.0, 120.0) == [0, 1, 2], cls.name


@pytest.mark.parametrize("layout", ["uniform", "clustered"])
async def test_small_run_at_night_agrees_with_ours(tmp_path, layout, monkeypatch):
    """At 02:10 three fifths of the stations are closed: every way ranks the open ones first alike."""
    import datetime as dt

    bench = _bench()
    monkeypatch.setattr(bench, "MIN_QPS_SECONDS", 0.0)
    night = dt.datetime(2026, 11, 24, 18, 10, tzinfo=dt.UTC)
    r = await bench.run_one(3000, layout, 120, tmp_path, 1, 2, night)
    for a in r["anchors"]:
        assert a["agree"] == (120, 120), a["name"]
    assert r["agree_geo"] == (1, 1)
