"""What a courier means by a word typed in a private chat (no command, no flow waiting for it).

``厕所``, ``充电``, ``热饭``, ``饮水``, ``换电`` (and ``toilet``, ``charging``, ``microwave``, ``water``,
``battery swap``...) are the quick filters: "the nearest station with that". They may come wrapped
as people type them (``找厕所``, ``附近哪里有厕所？``, ``厕所在哪``, ``where is a toilet``) and
several at once (``厕所 充电``, ``饮水和热饭``). ``附近`` / ``nearby`` asks for the nearest stations,
``你好`` / ``hello`` for the short help. Anything else is none of these (``read`` returns None) and
goes on to the station name search: ``/stations 厕所`` still searches names and addresses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Intent", "read"]

# Filter code -> the words that mean it (compared after normalising: NFKC, lower case, no spaces).
FILTER_WORDS: dict[str, tuple[str, ...]] = {
    "toilet": (
        "厕所",
        "上厕所",
        "卫生间",
        "洗手间",
        "公厕",
        "toilet",
        "toilets",
        "restroom",
        "bathroom",
        "wc",
        "loo",
    ),
    "charge": (
        "充电",
        "充电的",
        "手机充电",
        "电动车充电",
        "电瓶车充电",
        "充电桩",
        "charge",
        "charging",
        "charger",
        "phonecharging",
    ),
    "meal": (
        "热饭",
        "热个饭",
        "微波炉",
        "加热",
        "热菜",
        "microwave",
        "heatfood",
        "heatmeal",
        "heatupfood",
        "hotmeal",
    ),
    "water": ("饮水", "喝水", "打水", "接水", "热水", "开水", "饮水点", "water", "drinkingwater", "hotwater"),
    "swap": ("换电", "换电池", "换电柜", "换电站", "batteryswap", "swapbattery", "swap", "batteries"),
}
NEARBY_WORDS = (
    "附近",
    "附近驿站",
    "附近的驿站",
    "驿站",
    "找驿站",
    "最近的驿站",
    "暖蜂驿站",
    "nearby",
    "nearme",
    "stations",
    "station",
    "stationsnearby",
    "neareststation",
    "warmstation",
)
HELLO_WORDS = (
    "你好",
    "您好",
    "你好呀",
    "嗨",
    "哈喽",
    "哈啰",
    "在吗",
    "在不在",
    "hi",
    "hello",
    "hey",
    "hi there",
    "hello there",
)

# Wrappings around the word: "找", "附近哪里有", "我想", "…在哪", "where is the", "nearest"...
_PREFIX = re.compile(
    r"^(?:请问|我要|我想|想要|想|要|帮我|帮忙|找一?个|找|去|哪里有|哪儿有|哪有|哪里能|哪里可以|哪儿可以|可以|能|"
    r"附近的?|最近的?|有没有|有|"
    r"whereis(?:the|a)?|where(?:can|do)i|ineed(?:to|a)?|need(?:to|a)?|find(?:a|the|me)?|nearest|closest|any)+"
)
_SUFFIX = re.compile(r"(?:在哪里?|在哪儿|在什么地方|的地方|呢|吗|啊|呀|吧|一下|nearby|nearme|please|pls)+$")
_SPLIT = re.compile(r"[\s,，、&+/]+|和|跟|及|或|\band\b|\bor\b")


@dataclass(frozen=True)
class Intent:
    kind: str  # "filter", "nearby" or "hello"
    filters: tuple[str, ...] = ()  # filter codes, for "filter"


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[\s'\"“”‘’!?.。！？~～…:：;；()（）]+", "", text)
    return text


_FILTER_BY_WORD = {_norm(w): code for code, words in FILTER_WORDS.items() for w in words}
_NEARBY = {_norm(w) for w in NEARBY_WORDS}
_HELLO = {_norm(w) for w in HELLO_WORDS}


def _strip(word: str) -> str:
    return _SUFFIX.sub("", _PREFIX.sub("", word))


def read(text: str) -> Intent | None:
    """The intent of a short free text, or None (a name or address to search)."""
    if len(text) > 40:
        return None
    word = _norm(text)
    if not word:
        return None
    if word in _HELLO:
        return Intent("hello")
    if word in _NEARBY or _strip(word) in _NEARBY or _SUFFIX.sub("", word) in _NEARBY:
        return Intent("nearby")
    whole = _FILTER_BY_WORD.get(_strip(word))
    if whole is not None:
        return Intent("filter", (whole,))
    codes: list[str] = []
    for part in _SPLIT.split(unicodedata.normalize("NFKC", text).lower()):
        part = _strip(_norm(part))
        if not part:
            continue
        code = _FILTER_BY_WORD.get(part)
        if code is None:
            return None
        if code not in codes:
            codes.append(code)
    return Intent("filter", tuple(codes)) if codes else None
