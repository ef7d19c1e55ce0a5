"""`xiaoge-bot run` when things around it are wrong: one clear line and an exit, never a hang."""

import socket
from pathlib import Path

from tests.test_cli import run_cli, write_config

TOKEN = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_bot_api_exits_with_one_line(tmp_path):
    port = _closed_port()
    cfg = write_config(
        tmp_path,
        f'[telegram]\ntoken = "{TOKEN}"\nbase_url = "http://127.0.0.1:{port}/bot"\n'
        f'base_file_url = "http://127.0.0.1:{port}/file/bot"\n',
    )
    result = run_cli("run", "--config", str(cfg), timeout=60)  # before the fix: a traceback, then a hang
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot reach the Bot API" in result.stderr.strip().splitlines()[-1]


def test_database_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "dbdir"
    folder.mkdir()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[storage]\npath = "{folder}"\n', encoding="utf-8")
    result = run_cli("migrate", "--config", str(cfg))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("storage.path: cannot use the database")


def test_numbers_that_would_stall_sending_are_refused(tmp_path):
    for body, key in (
        ("[broadcast]\nmax_per_second = nan\n", "broadcast.max_per_second: must be a finite number"),
        ("[broadcast]\ngroup_per_minute = 0\n", "broadcast.group_per_minute: must be positive"),
        ("[stations]\nradius_m = -5\n", "stations.radius_m: must be positive"),
        ("[meetings]\nlate_grace_minutes = -1\n", "meetings.late_grace_minutes: must not be negative"),
    ):
        result = run_cli("migrate", "--config", str(write_config(tmp_path, body)))
        assert result.returncode == 2 and key in result.stderr, (body, result.stderr)


def test_sandbox_role_does_not_carry_over_between_runs(tmp_path):
    cfg = write_config(tmp_path)
    first = run_cli(
        "sandbox", "--config", str(cfg), "--role", "moderator", "--stations", "", stdin="/broadcast\n:quit\n"
    )
    assert first.returncode == 0, first.stderr
    assert "通知内容" in first.stdout
    second = run_cli(
        "sandbox", "--config", str(cfg), "--role", "courier", "--stations", "", stdin="/broadcast\n:quit\n"
    )
    assert second.returncode == 0, second.stderr
    assert "通知内容" not in second.stdout and "没有权限" in second.stdout


def test_sandbox_answers_a_reply_prompt_in_the_group(tmp_path):
    """The bot asks for a reply in groups (privacy mode); the sandbox sends the next line as that reply."""
    cfg = write_config(tmp_path)
    demo = str(Path(__file__).resolve().parents[1] / "data" / "stations.demo.csv")
    result = run_cli(
        "sandbox",
        "--config",
        str(cfg),
        "--role",
        "courier",
        "--stations",
        demo,
        stdin=":group\n/stations\n文三路\n:quit\n",
    )
    assert result.returncode == 0, result.stderr
    assert "请回复这条消息" in result.stdout
    assert "文三路" in result.stdout.split("请回复这条消息", 1)[1].split("文三路", 1)[1]
