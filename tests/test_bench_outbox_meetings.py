"""bench/scale/outbox.py and bench/scale/meetings.py keep working (their --quick sizes)."""

import argparse

from bench.scale import meetings, outbox


async def test_outbox_and_meetings_scenarios_run_quick(tmp_path, capsys):
    args = argparse.Namespace(quick=True, workdir=tmp_path)
    await outbox.run(args)
    await meetings.run(args)
    out = capsys.readouterr().out
    assert "outbox fetch_due" in out and "handed out: ours yes, naive NO" in out
    assert "meetings: re-plan all" in out and "naive" in out
