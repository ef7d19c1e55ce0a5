"""deploy/: the settings file the docker-compose layout mounts is a valid config, and the proxy checks
and routes to the ports that config opens."""

import re
from pathlib import Path

from bot.core.config import load_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_compose_config_is_valid_and_matches_the_proxy(monkeypatch):
    monkeypatch.setenv("XIAOGE_BOT_TOKEN", "123456789:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    monkeypatch.setenv("XIAOGE_BOT_DATABASE_URL", "postgresql://xiaoge:p@postgres:5432/xiaoge")
    config = load_config(DEPLOY / "config.toml")
    assert config.telegram.mode == "webhook" and config.storage.url.startswith("postgresql://")
    assert config.telegram.webhook_listen == config.webapp.listen == "0.0.0.0"
    caddy = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert f"path /{config.telegram.webhook_path} " in caddy
    for port in (config.telegram.webhook_port, config.webapp.port):
        assert f"bot-a:{port} bot-b:{port}" in caddy
    assert re.findall(r"health_port (\d+)", caddy) == [str(config.cluster.health_port)] * 2
    assert caddy.count("health_uri /healthz") == 2
    compose = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    assert "image: postgres:15" in compose and "bot-a: *bot" in compose and "bot-b: *bot" in compose
