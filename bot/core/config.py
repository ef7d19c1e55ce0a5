"""Configuration: TOML (stdlib tomllib) validated into typed, frozen dataclasses.

Each section is a frozen dataclass; the loader walks its fields, so a feature adds its section by
declaring a dataclass with defaults and one field on `Config`. Every problem is reported as one
`ConfigError` naming the dotted key ("telegram.mode: must be one of polling, webhook").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TOKEN_ENV = "XIAOGE_BOT_TOKEN"
DATABASE_URL_ENV = "XIAOGE_BOT_DATABASE_URL"


class ConfigError(Exception):
    """A problem with the configuration, worded for the person who wrote it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class TelegramConfig:
    # Bot token from @BotFather; XIAOGE_BOT_TOKEN in the environment wins over the file.
    # Secrets never show in a repr (a logged config, a traceback's locals).
    token: str = field(default="", repr=False)
    # Bot API server; change for a self-hosted telegram-bot-api server.
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    # Webhook mode: where the bot listens and the public HTTPS URL Telegram calls.
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_url: str = ""
    webhook_path: str = "telegram"
    webhook_secret_token: str = field(default="", repr=False)
    # Long-polling timeout in seconds.
    poll_timeout: int = 30
    # Updates handled at once (those of one user, or of one chat, still one after another, in
    # order); 1 = one update at a time.
    concurrent_updates: int = 128


@dataclass(frozen=True)
class StorageConfig:
    # SQLite database file (the embedded default: one district, one machine).
    path: str = "data/xiaoge.sqlite3"
    # PostgreSQL instead, e.g. "postgresql://xiaoge@db.example.org:5432/xiaoge" (env
    # XIAOGE_BOT_DATABASE_URL wins): shared by two instances, backed up while running. Never shown in
    # a repr (it may hold a password).
    url: str = field(default="", repr=False)


@dataclass(frozen=True)
class BotConfig:
    timezone: str = "Asia/Shanghai"
    default_language: Literal["zh", "en"] = "zh"
    admins: tuple[int, ...] = ()
    # Chat that receives reports and alerts (a private group of moderators); 0 = none yet.
    moderator_chat_id: int = 0
    # Per-area moderator chats: area tag -> chat id.
    area_moderator_chats: dict[str, int] = field(default_factory=dict)
    # Seconds a Telegram group-admin lookup is trusted (dropped at once on chat_member updates).
    admin_cache_seconds: int = 300

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


@dataclass(frozen=True)
class StationsConfig:
    # Search radius for "nearest stations" in metres.
    radius_m: int = 3000
    # Wider search offered when nothing is within the radius.
    wide_radius_m: int = 10000
    # Effective e-bike speed for "riding minutes".
    riding_speed_kmh: float = 15.0
    page_size: int = 3


@dataclass(frozen=True)
class ReportsConfig:
    description_limit: int = 500
    max_photos: int = 3
    # Unacknowledged reports are raised again after this many hours, once a day.
    ack_timeout_hours: int = 24
    # Local hour from which the day's escalation digest (one message per moderators' chat) goes out.
    digest_hour: int = 9
    # "Not solved" may reopen a resolved report within this many days.
    reopen_days: int = 14
    duplicate_radius_m: int = 50
    duplicate_window_hours: int = 72
    # Reports one user may file per local day.
    daily_limit: int = 10
    # Volunteer points for a hazard tip acknowledged or resolved as valid (credited once).
    hazard_points: int = 5
    # A decision taken on the moderators' desk (Mini App) or a card button waits this long before the reporter is told,
    # so an undo within it tells them nothing; 0 = told at once.
    undo_grace_seconds: int = 30
    # The last decision on a report may be undone for this many minutes (after the grace, the reporter
    # gets a short correction).
    undo_window_minutes: int = 10
    # Service area as [south, west, north, east] in WGS-84 degrees; a location outside is refused.
    # Default: Zhejiang province with a small margin (Zhoushan islands included). [] = no check.
    service_bounds: tuple[float, ...] = (26.8, 117.8, 31.4, 123.4)


@dataclass(frozen=True)
class TasksConfig:
    # Withdrawing a claim is allowed until this many hours before the start.
    withdraw_hours: int = 2
    # Reminders to claimers, in minutes before the start.
    reminder_offsets_minutes: tuple[int, ...] = (1440, 60)
    # The reminder at this offset asks "我会到 / 去不了" (one of reminder_offsets_minutes; 0 = none
    # asks, and the captain's roster then shows no "not confirmed" marks).
    confirm_offset_minutes: int = 1440
    redeem_code_minutes: int = 10
    # What points buy at the stations, shown with /points and /redeem ([] = no such line).
    rewards: tuple[str, ...] = ("毛巾 10 分", "肥皂 5 分", "充电宝 50 分", "驿站餐食优惠 20 分")
    page_size: int = 5
    # A shared location sorts the wish wall by distance for this many minutes.
    location_max_age_minutes: int = 60


@dataclass(frozen=True)
class MeetingsConfig:
    reminder_offsets_minutes: tuple[int, ...] = (1440, 60)
    # A late reminder is still sent within this many minutes after it was due.
    late_grace_minutes: int = 15
    # Reminders are planned this many days ahead.
    horizon_days: int = 35
    # Length of a new meeting unless the organizer says otherwise.
    default_duration_minutes: int = 90
    # Agenda topics close this many minutes before the start and the organizer gets the list then
    # (1200 = 20 h: the evening before a 14:30 meeting, a few hours after the 1-day reminder).
    topic_deadline_minutes: int = 1200
    topic_max_chars: int = 300
    max_topics_per_user: int = 5
    # Occurrences on a Chinese public holiday are flagged to the organizer this many days ahead.
    holiday_notice_days: int = 7
    # A moved occurrence is told to the groups at once when its old or new date is within
    # horizon_days; a move further ahead is told this many days before the earlier of the two dates.
    move_notice_days: int = 7
    title_max_chars: int = 80
    outcome_max_chars: int = 1500


@dataclass(frozen=True)
class BroadcastConfig:
    # Meal-time rush windows (local time) in which non-urgent notices are held.
    rush_windows: tuple[str, ...] = ("11:00-13:30", "17:00-19:30")
    # Broadcast pacing: stays below Telegram's ~30 messages/s to keep room for replies.
    max_per_second: float = 25.0
    group_per_minute: int = 20
    max_attempts: int = 5
    progress_every_seconds: float = 3.0


@dataclass(frozen=True)
class WebappConfig:
    # The moderators' desk (a Telegram Mini App) served by the bot process itself. Off while
    # public_url is empty; Telegram opens only https:// URLs (proxy public_url to listen:port).
    listen: str = "127.0.0.1"
    port: int = 8088
    public_url: str = ""
    # initData older than this is refused (Telegram signs it when the app opens).
    auth_max_age_hours: int = 24
    # Map tiles ({s} {x} {y} {z}); tiles_gcj02 = true when the tile source draws in GCJ-02 (Chinese
    # providers such as Amap): markers are then shifted to match. "" = a blank map with markers.
    tiles_url: str = (
        "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
    )
    tiles_subdomains: str = "1234"
    tiles_gcj02: bool = True
    tiles_attribution: str = "© 高德地图"


@dataclass(frozen=True)
class DigestConfig:
    # The week in one chart, posted to every moderators' chat: ISO weekday (1 = Monday) and local time.
    enabled: bool = True
    weekday: int = 1
    time: str = "09:00"


@dataclass(frozen=True)
class ClusterConfig:
    # Two instances with the same storage.url (PostgreSQL): one active, one standby, by a lease in the
    # database. The standby takes over within lease_seconds + 1 s of the active one dying.
    enabled: bool = True
    lease_seconds: float = 10.0
    # GET /healthz here: 200 on the active instance, 503 on the standby (a proxy's health check).
    # 0 = not served.
    health_listen: str = "127.0.0.1"
    health_port: int = 0


@dataclass(frozen=True)
class OutboxConfig:
    # Finished rows (sent, failed, skipped, expired, cancelled, delivery unknown) are kept this many
    # days, then pruned by a daily job in small batches.
    keep_days: int = 30


@dataclass(frozen=True)
class Config:
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    bot: BotConfig = field(default_factory=BotConfig)
    stations: StationsConfig = field(default_factory=StationsConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    meetings: MeetingsConfig = field(default_factory=MeetingsConfig)
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    webapp: WebappConfig = field(default_factory=WebappConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def with_overrides(self, **sections: Any) -> Config:
        """A copy with some fields of some sections replaced (tests, sandbox)."""
        changes = {
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()
        }
        return dataclasses.replace(self, **changes)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    if origin is dict:
        return "a table"
    return str(tp)


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table ([section])")
        return _load_dataclass(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"must be {_type_name(tp)} (got {value!r})")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(key, f"must be {_type_name(tp)}")
        item_tp = typing.get_args(tp)[0]
        return tuple(_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, "must be a table")
        _, val_tp = typing.get_args(tp)
        return {str(k): _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false (got {value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer (got {value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number (got {value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string (got {value!r})")
        return value
    raise ConfigError(key, f"unsupported type {tp}")  # pragma: no cover - programming error


def _load_dataclass(cls: Any, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for name in data:
        if name not in known:
            where = f"{prefix}.{name}" if prefix else name
            raise ConfigError(where, "unknown key (check the spelling; see config.example.toml)")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _convert(data[f.name], hints[f.name], where)
    return cls(**kwargs)


# Numbers that may be 0 (every other number in these sections must be above 0).
_ZERO_ALLOWED = {
    "bot.admin_cache_seconds",  # 0: ask Telegram every time
    "telegram.poll_timeout",  # 0: short polling
    "reports.hazard_points",  # 0: no points for hazards
    "reports.digest_hour",  # 0: the escalation digest goes out from midnight
    "meetings.late_grace_minutes",  # 0: a late reminder is dropped
    "tasks.withdraw_hours",  # 0: withdraw until the start
    "reports.undo_grace_seconds",  # 0: the reporter is told at once
    "tasks.confirm_offset_minutes",  # 0: no reminder asks 我会到 / 去不了
    "cluster.health_port",  # 0: no health endpoint
}
_NUMERIC_SECTIONS = (
    "telegram",
    "bot",
    "stations",
    "reports",
    "tasks",
    "meetings",
    "broadcast",
    "webapp",
    "digest",
    "outbox",
    "cluster",
)
_SIGNED = {"bot.moderator_chat_id", "telegram.webhook_port"}  # chat ids are negative; port checked below


def _check_numbers(config: Config) -> None:
    """Every number is finite, and positive unless 0 has a meaning: a 0 or NaN rate would stall sends."""
    for section in _NUMERIC_SECTIONS:
        values = getattr(config, section)
        for f in dataclasses.fields(values):
            key = f"{section}.{f.name}"
            value = getattr(values, f.name)
            if key in _SIGNED or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                raise ConfigError(key, f"must be a finite number (got {value!r})")
            if value < 0 or (value == 0 and key not in _ZERO_ALLOWED):
                raise ConfigError(
                    key, "must be positive" if key not in _ZERO_ALLOWED else "must not be negative"
                )


def _validate(config: Config) -> None:
    _check_numbers(config)
    try:
        zoneinfo.ZoneInfo(config.bot.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "bot.timezone", f"unknown time zone {config.bot.timezone!r} (e.g. Asia/Shanghai)"
        ) from None
    tg = config.telegram
    if tg.mode == "webhook":
        if not tg.webhook_url.startswith("https://"):
            raise ConfigError(
                "telegram.webhook_url", "webhook mode needs the public https:// URL Telegram will call"
            )
        if not 0 < tg.webhook_port < 65536:
            raise ConfigError("telegram.webhook_port", "must be between 1 and 65535")
    web = config.webapp
    if web.public_url and not web.public_url.startswith(("https://", "http://")):
        raise ConfigError("webapp.public_url", "must be the https:// address Telegram opens (or empty: off)")
    if not 0 < web.port < 65536:
        raise ConfigError("webapp.port", "must be between 1 and 65535")
    if config.cluster.lease_seconds < 3:
        raise ConfigError("cluster.lease_seconds", "must be at least 3 (renewed every third of it)")
    if not 0 <= config.cluster.health_port < 65536:
        raise ConfigError("cluster.health_port", "must be between 1 and 65535 (or 0: off)")
    if not 1 <= config.digest.weekday <= 7:
        raise ConfigError("digest.weekday", "must be 1 (Monday) to 7 (Sunday)")
    try:
        dt.time.fromisoformat(config.digest.time)
    except ValueError:
        raise ConfigError("digest.time", f"must look like 09:00 (got {config.digest.time!r})") from None
    if tg.webhook_secret_token and not all(c.isalnum() or c in "_-" for c in tg.webhook_secret_token):
        raise ConfigError("telegram.webhook_secret_token", "may only contain A-Z, a-z, 0-9, _ and -")
    if not config.storage.path:
        raise ConfigError("storage.path", "must not be empty")
    for i, window in enumerate(config.broadcast.rush_windows):
        try:
            start, end = window.split("-")
            dt.time.fromisoformat(start.strip())
            dt.time.fromisoformat(end.strip())
        except ValueError:
            raise ConfigError(
                f"broadcast.rush_windows[{i}]", f"must look like 11:00-13:30 (got {window!r})"
            ) from None
    mt = config.meetings
    if mt.late_grace_minutes < 0:
        raise ConfigError("meetings.late_grace_minutes", "must not be negative")
    if mt.horizon_days <= 0:
        raise ConfigError("meetings.horizon_days", "must be positive")
    for i, offset in enumerate(mt.reminder_offsets_minutes):
        if offset <= 0:
            raise ConfigError(f"meetings.reminder_offsets_minutes[{i}]", "must be positive (minutes before)")
    if config.stations.radius_m <= 0:
        raise ConfigError("stations.radius_m", "must be positive")
    bounds = config.reports.service_bounds
    if bounds:
        if len(bounds) != 4:
            raise ConfigError("reports.service_bounds", "must be [south, west, north, east] or []")
        south, west, north, east = bounds
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ConfigError(
                "reports.service_bounds", "must be [south, west, north, east] with south < north, west < east"
            )
    for key in ("daily_limit", "description_limit", "ack_timeout_hours", "duplicate_radius_m"):
        if getattr(config.reports, key) <= 0:
            raise ConfigError(f"reports.{key}", "must be positive")
    if config.reports.hazard_points < 0:
        raise ConfigError("reports.hazard_points", "must not be negative")
    if not 0 <= config.reports.digest_hour <= 23:
        raise ConfigError("reports.digest_hour", "must be an hour between 0 and 23")
    for i, minutes in enumerate(config.tasks.reminder_offsets_minutes):
        if minutes <= 0:
            raise ConfigError(f"tasks.reminder_offsets_minutes[{i}]", "must be positive")
    confirm = config.tasks.confirm_offset_minutes
    if confirm and confirm not in config.tasks.reminder_offsets_minutes:
        # Otherwise no reminder would ask, silently: say it as 0.
        raise ConfigError(
            "tasks.confirm_offset_minutes",
            "must be 0 (no reminder asks 我会到 / 去不了) or one of tasks.reminder_offsets_minutes",
        )
    if config.tasks.redeem_code_minutes <= 0:
        raise ConfigError("tasks.redeem_code_minutes", "must be positive")
    if config.tasks.page_size <= 0:
        raise ConfigError("tasks.page_size", "must be positive")
    url = config.storage.url
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("storage.url", "must be a postgresql:// URL (or empty for SQLite at storage.path)")


def parse_config(data: dict[str, Any], env: typing.Mapping[str, str] | None = None) -> Config:
    config: Config = _load_dataclass(Config, data, "")
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        config = dataclasses.replace(config, telegram=dataclasses.replace(config.telegram, token=token))
    url = env.get(DATABASE_URL_ENV, "").strip()
    if url:
        config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, url=url))
    _validate(config)
    return config


def load_config(path: str | Path, env: typing.Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("", f"config file {p} not found (copy config.example.toml to {p})") from None
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError("", f"{p} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{p} is not valid TOML: {exc}") from None
    return parse_config(data, env)


def token_looks_valid(token: str) -> bool:
    head, _, tail = token.partition(":")
    return head.isdigit() and len(tail) >= 30
