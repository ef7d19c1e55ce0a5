"""Shared helpers for the desk (Mini App) tests: a free port, signed initData, a report on file."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

from bot.reports.service import ReportDraft, ReportService
from bot.webapp.auth import make_init_data

# West Lake area, Hangzhou (WGS-84)
LAT, LON = 30.2590, 120.1300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def desk_overrides(**extra: Any) -> dict[str, dict[str, Any]]:
    port = free_port()
    sections: dict[str, dict[str, Any]] = {
        # Tiles from nowhere reachable: the map must still show its markers on a blank background.
        "webapp": {
            "public_url": f"http://127.0.0.1:{port}/",
            "port": port,
            "tiles_url": f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png",
        },
    }
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    return sections


def init_data(
    bot: Any, user_id: int, name: str = "社工", *, lang: str = "zh", age: dt.timedelta | None = None
) -> str:
    signed_at = bot.clock.now() - (age or dt.timedelta(minutes=1))
    user = {"id": user_id, "first_name": name, "language_code": lang}
    return make_init_data(bot.config.telegram.token, user, auth_date=signed_at)


def url(bot: Any) -> str:
    return bot.config.webapp.public_url.rstrip("/")


async def file_report(bot: Any, chat: Any, user_id: int, **values: Any) -> Any:
    """A report filed by a courier who opened the private chat (so notices reach them)."""
    await chat.send("/start")
    await bot.settle()
    draft = {
        "kind": "hazard",
        "category": "road_damage",
        "description": "文三路口有个大坑",
        "lat": LAT,
        "lon": LON,
    }
    draft.update(values)
    report = await bot.core.service(ReportService).submit(user_id, ReportDraft(**draft))
    await bot.settle()
    return report
