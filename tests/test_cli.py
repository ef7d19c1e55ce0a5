"""The command line: bad config messages, missing token, migrate, roles, and the sandbox via stdin/stdout."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, stdin: str = "", cwd: Path = ROOT, env_extra: dict | None = None, timeout: float = 60
):
    env = {k: v for k, v in os.environ.items() if k != "XIAOGE_BOT_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def write_config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\npath = "{tmp_path / "db.sqlite3"}"\n' + body, encoding="utf-8")
    return path


def test_bad_config_is_one_line_with_exit_code_2(tmp_path):
    cfg = write_config(tmp_path, '[bot]\nadmins = ["x"]\n')
    result = run_cli("run", "--config", str(cfg))
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: bot.admins[0]: must be an integer (got 'x')"
    cfg.write_text("[bot]\ncolour = 1\n", encoding="utf-8")
    result = run_cli("migrate", "--config", str(cfg))
    assert result.returncode == 2 and "bot.colour: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file(tmp_path):
    result = run_cli("run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "copy config.example.toml" in result.stderr


def test_missing_token_tells_about_botfather(tmp_path):
    cfg = write_config(tmp_path)
    result = run_cli("run", "--config", str(cfg))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "@BotFather" in lines[0] and "XIAOGE_BOT_TOKEN" in lines[0]


def test_migrate_and_roles(tmp_path):
    cfg = write_config(tmp_path)
    result = run_cli("migrate", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    assert "schema version" in result.stdout
    assert (
        run_cli("role", "grant", "42", "moderator", "蒋村街道", "--config", str(cfg)).stdout.strip()
        == "granted"
    )
    assert (
        run_cli("role", "grant", "42", "moderator", "蒋村街道", "--config", str(cfg)).stdout.strip()
        == "already held"
    )
    listing = run_cli("role", "list", "--config", str(cfg)).stdout
    assert "42\tmoderator\t蒋村街道" in listing
    bad = run_cli("role", "grant", "42", "king", "--config", str(cfg))
    assert bad.returncode == 2 and "unknown role" in bad.stderr


def test_help_everywhere():
    for args in (["--help"], ["run", "--help"], ["role", "--help"], ["stations", "import", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_sandbox_through_stdin_and_stdout(tmp_path):
    cfg = write_config(tmp_path)
    script = "/start\n:help\n/lang\n2\n/start\n:quit\n"
    result = run_cli(
        "sandbox", "--config", str(cfg), "--role", "moderator", "--stations", "", stdin=script, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "你好，陈版主" in out
    assert "[1] 📍 附近驿站 (shares location)" in out
    assert "Sandbox commands" in out
    assert "Language set to English" in out
    assert "Hi 陈版主" in out
    assert (tmp_path / "sandbox.sqlite3").exists()


def test_stations_export_to_stdout_round_trips_demo_and_active(tmp_path):
    cfg = write_config(tmp_path)
    src = tmp_path / "in.csv"
    src.write_text(
        "external_id,name,lat,lon,demo\nq1,测试站,30.27,120.15,1\nq2,真实驿站,30.28,120.16,0\n",
        encoding="utf-8",
    )
    result = run_cli("stations", "import", str(src), "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    result = run_cli("stations", "export", "--config", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "-").exists()  # '-' is standard output, not a file named "-"
    lines = result.stdout.lstrip("\ufeff").splitlines()
    assert lines[0].endswith(",area,demo,active")
    assert lines[1].startswith("q1,测试站,") and lines[1].endswith(",1,1")
    assert lines[2].endswith(",0,1")
    assert "to standard output" in result.stderr

    # Into another database: the demo flag survives the round trip.
    (tmp_path / "out.csv").write_text(result.stdout, encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    cfg2 = write_config(other)
    assert run_cli("stations", "import", str(tmp_path / "out.csv"), "--config", str(cfg2)).returncode == 0
    again = run_cli("stations", "export", "-o", str(other / "again.csv"), "--config", str(cfg2))
    assert again.returncode == 0, again.stderr
    rows = (other / "again.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[1].startswith("q1,") and rows[1].endswith(",1,1") and rows[2].endswith(",0,1")


def test_bad_station_files_give_one_line_and_exit_1(tmp_path):
    cfg = write_config(tmp_path)
    assert run_cli("migrate", "--config", str(cfg)).returncode == 0  # no migration log lines below
    files = {
        "nolon.csv": (b"name,lat\nA,30\n", "missing column(s) lon"),
        "binary.csv": (b"name,lat,lon\n\xff\xfe\xfd\x80\x81\xff,1,2\n\xff", "neither UTF-8 nor GB18030"),
        "bad.geojson": (b'{"type": "FeatureCollection", "features": [', "not valid JSON"),
        "odd16.csv": (b"\xff\xfen\x00a\x00m", "UTF-16"),
        "huge.csv": (
            b"name,lat,lon\nA," + b"x" * 200_000 + b",1\n",
            "line 2: unreadable CSV: a cell is longer",
        ),
    }
    for name, (data, expected) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = run_cli("stations", "import", str(path), "--config", str(cfg))
        assert result.returncode == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{path}: ") and expected in lines[0], (name, lines)
