"""Telegram Mini App sign-in: the initData a Mini App is opened with, checked as Telegram documents.

secret_key = HMAC_SHA256(key="WebAppData", msg=bot_token)
data_check_string = the received fields except `hash`, sorted by key, as "key=value" lines
valid when HMAC_SHA256(key=secret_key, msg=data_check_string) (hex) equals `hash`,
and `auth_date` is at most `max_age` old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

# initData signed this far in the future (clock skew between Telegram and us) is still accepted.
FUTURE_SKEW = dt.timedelta(minutes=5)


class InitDataError(Exception):
    """Why initData was refused: missing | malformed | bad_hash | expired | no_user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str
    last_name: str
    username: str | None
    language_code: str | None
    auth_date: dt.datetime


def _secret(token: str) -> bytes:
    return hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()


def _check_string(pairs: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(pairs.items()) if k != "hash")


def sign_init_data(fields: dict[str, str], token: str) -> str:
    """initData as Telegram would send it (tests and the sandbox): the fields plus their hash."""
    digest = hmac.new(_secret(token), _check_string(fields).encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def make_init_data(
    token: str, user: dict[str, object], *, auth_date: dt.datetime, query_id: str = "AAF-test"
) -> str:
    fields = {
        "query_id": query_id,
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(int(auth_date.timestamp())),
    }
    return sign_init_data(fields, token)


def verify_init_data(init_data: str, token: str, *, now: dt.datetime, max_age: dt.timedelta) -> WebAppUser:
    """The user initData was signed for; raises InitDataError with the reason."""
    if not init_data:
        raise InitDataError("missing")
    try:
        pairs = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise InitDataError("malformed") from None
    received = pairs.get("hash", "")
    if not received:
        raise InitDataError("missing")
    expected = hmac.new(_secret(token), _check_string(pairs).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received.lower()):
        raise InitDataError("bad_hash")
    try:
        auth_date = dt.datetime.fromtimestamp(int(pairs.get("auth_date", "")), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise InitDataError("malformed") from None
    if now - auth_date > max_age or auth_date - now > FUTURE_SKEW:
        raise InitDataError("expired")
    try:
        user = json.loads(pairs.get("user", ""))
        user_id = int(user["id"])
    except (ValueError, TypeError, KeyError):
        raise InitDataError("no_user") from None
    return WebAppUser(
        id=user_id,
        first_name=str(user.get("first_name") or ""),
        last_name=str(user.get("last_name") or ""),
        username=user.get("username") or None,
        language_code=user.get("language_code") or None,
        auth_date=auth_date,
    )
