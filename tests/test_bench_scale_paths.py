"""The scale benchmark's station search, wish wall, rank and reports scenarios run (--quick: their smallest
size) and find our answers equal to the naive baselines' (a '!!' line says they differ). No timing is
checked here: speed is the benchmark's business."""

import argparse

import pytest

from bench.scale import rank, reports, stations, wishes


@pytest.mark.parametrize(
    "module", [stations, wishes, rank, reports], ids=["stations", "wishes", "rank", "reports"]
)
async def test_quick_run_agrees_with_the_baseline(module, tmp_path, capsys):
    await module.run(argparse.Namespace(quick=True, workdir=tmp_path))
    out = capsys.readouterr().out
    assert "!!" not in out, out
    assert "p95" in out and "naive" in out
