import pytest

from bot.core.config import ConfigError, load_config, parse_config


def test_defaults():
    cfg = parse_config({}, env={})
    assert cfg.storage.path == "data/xiaoge.sqlite3"
    assert cfg.bot.timezone == "Asia/Shanghai"
    assert cfg.bot.default_language == "zh"
    assert cfg.telegram.mode == "polling"


def test_env_token_wins():
    cfg = parse_config({"telegram": {"token": "file"}}, env={"XIAOGE_BOT_TOKEN": "env"})
    assert cfg.telegram.token == "env"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bot": {"admins": ["a"]}}, "bot.admins[0]: must be an integer"),
        ({"bot": {"colour": 1}}, "bot.colour: unknown key"),
        ({"telegram": {"mode": "push"}}, "telegram.mode: must be one of polling, webhook"),
        ({"bot": {"timezone": "Mars/Base"}}, "bot.timezone: unknown time zone"),
        ({"telegram": {"mode": "webhook"}}, "telegram.webhook_url"),
        ({"broadcast": {"rush_windows": ["noon"]}}, "broadcast.rush_windows[0]"),
        ({"bot": "x"}, "bot: must be a table"),
        ({"cluster": {"lease_seconds": 1}}, "cluster.lease_seconds: must be at least 3"),
        ({"cluster": {"health_port": 70000}}, "cluster.health_port: must be between 1 and 65535"),
        ({"storage": {"url": "mysql://x"}}, "storage.url: must be a postgresql:// URL"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        parse_config(data, env={})
    assert message in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[bot\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})
    gbk = tmp_path / "gbk.toml"
    gbk.write_bytes('[bot]\ntimezone = "亚洲"\n'.encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(gbk, env={})


def test_example_config_loads():
    cfg = load_config("config.example.toml", env={})
    assert cfg.meetings.late_grace_minutes == 15


def test_secrets_never_show_in_a_repr():
    config = parse_config(
        {"telegram": {"token": "123:SECRET-token", "webhook_secret_token": "hook-secret"}}, env={}
    )
    for text in (repr(config), str(config), repr(config.telegram)):
        assert "SECRET-token" not in text and "hook-secret" not in text
    assert config.telegram.token == "123:SECRET-token"  # still there to use


def test_confirm_offset_zero_means_no_question():
    """0 is documented as "no reminder asks 我会到 / 去不了": it is accepted, not "must be positive"."""
    assert parse_config({"tasks": {"confirm_offset_minutes": 0}}, env={}).tasks.confirm_offset_minutes == 0
    with pytest.raises(ConfigError, match=r"tasks\.confirm_offset_minutes: must not be negative"):
        parse_config({"tasks": {"confirm_offset_minutes": -5}}, env={})
    # An offset no reminder is sent at would ask nothing, silently: refused, naming the way to say it.
    with pytest.raises(ConfigError, match=r"must be 0 .* or one of tasks\.reminder_offsets_minutes"):
        parse_config({"tasks": {"confirm_offset_minutes": 30}}, env={})
    cfg = parse_config(
        {"tasks": {"reminder_offsets_minutes": [120, 30], "confirm_offset_minutes": 30}}, env={}
    )
    assert cfg.tasks.confirm_offset_minutes == 30
