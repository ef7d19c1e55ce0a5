"""Message catalogs: every user-facing text, in Simplified Chinese (default) and English.

Catalogs are TOML files `bot/locales/<lang>/<feature>.toml`; nested tables flatten to dotted keys
(`[start] greeting = "..."` is `start.greeting`). Texts use `str.format` placeholders. A test keeps
both languages complete and their placeholders equal.

Plurals: a placeholder whose format spec holds a `|` picks a word by its number instead of showing
it: `"{count} {count:group|groups}"` gives "1 group", "2 groups" (Chinese needs none).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
# Time zones that keep Beijing time (UTC+8 all year): shown as `zone.beijing` (北京时间).
BEIJING_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"})


class _Formatter(string.Formatter):
    """str.format, plus `{n:one|other}`: the word for n (`one` when n is 1, else `other`)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" in format_spec:
            one, _, other = format_spec.partition("|")
            if isinstance(value, str) and value.strip().isdigit():  # a count read from text ("1")
                value = int(value)
            return one if value == 1 else other
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str], source: str) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out, source)
        elif isinstance(value, str):
            if full in out:
                raise ValueError(f"{source}: duplicate key {full}")
            out[full] = value
        else:
            raise ValueError(f"{source}: {full} must be a string")


class Catalog:
    def __init__(self, texts: dict[str, dict[str, str]], default: str = DEFAULT_LANGUAGE) -> None:
        self.texts = texts
        self.default = default

    @classmethod
    def load(cls, default: str = DEFAULT_LANGUAGE) -> Catalog:
        return cls(_load_all(), default)

    def has(self, key: str) -> bool:
        return key in self.texts[self.default]

    def t(self, lang: str | None, key: str, /, **values: Any) -> str:
        table = self.texts.get(lang or self.default) or self.texts[self.default]
        template = table.get(key)
        if template is None:
            template = self.texts[self.default].get(key)
        if template is None:
            raise KeyError(f"message catalog has no key {key!r}")
        if not values:
            return template
        return _FORMATTER.vformat(template, (), values) if "|" in template else template.format(**values)

    def zone_name(self, lang: str | None, zone: str) -> str:
        """A time zone as people say it: 北京时间 / Beijing time for China's, else its IANA name."""
        return self.t(lang, "zone.beijing") if zone in BEIJING_ZONES else zone

    def all_languages(self, key: str) -> set[str]:
        """The text of `key` in every language (to recognise a pressed menu button)."""
        return {table[key] for table in self.texts.values() if key in table}

    def keys(self, prefix: str) -> Iterator[str]:
        return (k for k in self.texts[self.default] if k.startswith(prefix))


@cache
def _load_all() -> dict[str, dict[str, str]]:
    root = resources.files("bot") / "locales"
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        table: dict[str, str] = {}
        folder = root / lang
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                _flatten("", tomllib.loads(entry.read_text(encoding="utf-8")), table, f"{lang}/{entry.name}")
        texts[lang] = table
    return texts


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def resolve_language(chosen: str | None, language_code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The user's /lang choice, else Telegram's language_code (zh*, en*), else the default."""
    if chosen in LANGUAGES:
        return chosen
    code = (language_code or "").lower()
    if code.startswith("zh"):
        return "zh"
    if code.startswith("en"):
        return "en"
    return default
