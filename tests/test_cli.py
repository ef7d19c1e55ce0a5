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
    assert "你好，沙盒版主" in out
    assert "[1] 📍 附近驿站 (shares location)" in out
    assert "Sandbox commands" in out
    assert "Language set to English" in out
    assert "Hi 沙盒版主" in out
    assert (tmp_path / "sandbox.sqlite3").exists()
