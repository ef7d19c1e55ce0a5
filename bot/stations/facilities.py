"""The fixed vocabularies of stations: facilities, kinds and the quick filters.

Labels shown to people live in the catalogs (``stations.facility.<code>``, ``stations.kind.<code>``,
``stations.filter.<code>``); this module holds codes, icons, stable bit numbers and the spellings
accepted in import files (codes, English labels, common Chinese names such as 饮水, 充电, 微波炉).

Each facility has a fixed ``bit``: the storage layer keeps a bit mask per station so the nearest
query can filter inside the spatial index. Never renumber a bit; add new facilities with new bits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FACILITIES",
    "FILTERS",
    "KINDS",
    "Facility",
    "Filter",
    "Kind",
    "UnknownFacilityError",
    "UnknownKindError",
    "facility_mask",
    "filter_masks",
    "icons",
    "implied_facilities",
    "parse_facilities",
    "parse_kind",
    "sort_codes",
]


@dataclass(frozen=True, slots=True)
class Facility:
    code: str
    bit: int
    icon: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Kind:
    code: str
    icon: str
    aliases: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    """Facilities every place of this kind offers (a battery cabinet swaps batteries)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A quick filter button: a station matches when it has any of ``facilities``."""

    code: str
    icon: str
    facilities: frozenset[str]


FACILITIES: tuple[Facility, ...] = (
    Facility("drinking_water", 0, "💧", ("饮水", "饮用水", "喝水", "直饮水", "纯净水", "饮水机", "water")),
    Facility("hot_water", 1, "♨️", ("热水", "开水", "热饮", "hot water")),
    Facility(
        "phone_charging", 2, "🔌", ("充电", "手机充电", "充电宝", "充电线", "charging", "phone charging")
    ),
    Facility("battery_swap", 3, "🔋", ("换电", "换电柜", "电池更换", "swap", "battery swap")),
    Facility(
        "ebike_charging",
        4,
        "⚡",
        ("电动车充电", "电瓶车充电", "车辆充电", "电单车充电", "充电桩", "ebike charging", "e-bike charging"),
    ),
    Facility("microwave", 5, "🍱", ("微波炉", "微波炉热饭", "热饭", "加热", "microwave")),
    Facility("air_conditioning", 6, "❄️", ("空调", "冷气", "ac", "air conditioning")),
    Facility("heating", 7, "🔥", ("暖气", "取暖", "供暖", "heating")),
    Facility("toilet", 8, "🚻", ("厕所", "卫生间", "洗手间", "公厕", "toilets", "wc")),
    Facility(
        "medicine", 9, "💊", ("药箱", "医药箱", "药品", "常用药", "急救箱", "medicine box", "first aid kit")
    ),
    Facility("umbrella", 10, "☂️", ("雨伞", "爱心雨伞", "借伞", "雨具", "雨衣", "umbrellas")),
    Facility("seats", 11, "🪑", ("座椅", "休息座椅", "座位", "休息", "休息区", "桌椅", "seat", "seating")),
    Facility("wifi", 12, "📶", ("无线网", "无线网络", "网络", "wi-fi", "wlan")),
    Facility(
        "discount_meal",
        13,
        "🍚",
        ("优惠餐", "爱心餐", "折扣餐", "工作餐", "小哥餐", "discount meal", "discount meals", "meal"),
    ),
    Facility("repair", 14, "🔧", ("维修", "修车", "车辆维修", "补胎", "bike repair")),
    Facility("legal_aid", 15, "⚖️", ("法律援助", "法援", "法律咨询", "维权", "legal aid")),
    Facility("counselling", 16, "💬", ("心理咨询", "心理疏导", "谈心", "counseling")),
    Facility("fridge", 17, "🧊", ("冰箱", "冷藏", "refrigerator")),
    Facility("haircut", 18, "💈", ("理发", "义剪", "免费理发", "hair cut", "free haircut")),
    Facility(
        "womens_supplies", 19, "🌸", ("女性用品", "卫生巾", "母婴", "women's supplies", "women supplies")
    ),
    Facility("reading", 20, "📚", ("阅读角", "图书", "书籍", "书吧", "reading corner", "books")),
    Facility("first_aid", 21, "⛑️", ("急救", "急救培训", "AED", "first aid", "first aid training")),
)

KINDS: tuple[Kind, ...] = (
    Kind(
        "station",
        "🏠",
        ("驿站", "暖蜂驿站", "暖新驿站", "骑手驿站", "职工驿站", "爱新补给站", "补给站", "warm station"),
    ),
    Kind(
        "party_center",
        "🏛️",
        (
            "党群服务中心",
            "党群中心",
            "党群服务站",
            "party centre",
            "party service center",
            "party service centre",
        ),
    ),
    Kind(
        "canteen",
        "🍜",
        ("食堂", "小哥食堂", "爱心食堂", "餐厅", "discount canteen", "courier canteen"),
        ("discount_meal",),
    ),
    Kind("merchant", "🏪", ("爱心商家", "友好商家", "商家", "商户", "friendly merchant", "shop")),
    Kind("water_point", "🚰", ("饮水点", "公益饮水点", "免费饮水点", "water point"), ("drinking_water",)),
    Kind(
        "battery_cabinet",
        "🔋",
        ("换电柜", "换电站", "battery swap cabinet", "battery cabinet"),
        ("battery_swap",),
    ),
    Kind("parcel_locker", "📦", ("快递柜", "智能柜", "丰巢", "locker", "parcel locker")),
)

FILTERS: tuple[Filter, ...] = (
    Filter("charge", "🔌", frozenset({"phone_charging", "ebike_charging"})),
    Filter("swap", "🔋", frozenset({"battery_swap"})),
    Filter("meal", "🍱", frozenset({"microwave"})),
    Filter("toilet", "🚻", frozenset({"toilet"})),
    Filter("water", "💧", frozenset({"drinking_water", "hot_water"})),
)

FACILITY_BY_CODE = {f.code: f for f in FACILITIES}
KIND_BY_CODE = {k.code: k for k in KINDS}
FILTER_BY_CODE = {f.code: f for f in FILTERS}
DEFAULT_KIND = "station"
_ORDER = {f.code: i for i, f in enumerate(FACILITIES)}


class UnknownFacilityError(ValueError):
    def __init__(self, names: list[str]) -> None:
        super().__init__("unknown facility: " + ", ".join(names))
        self.names = names


class UnknownKindError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown kind: {name}")
        self.name = name


def _key(text: str) -> str:
    norm = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[\s_\-]+", "", norm)


def _lookup(entries: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for code, aliases in entries:
        for spelling in (code, *aliases):
            key = _key(spelling)
            if table.setdefault(key, code) != code:
                raise RuntimeError(f"spelling {spelling!r} names two codes")  # pragma: no cover
    return table


_FACILITY_LOOKUP = _lookup((f.code, f.aliases) for f in FACILITIES)
_KIND_LOOKUP = _lookup((k.code, k.aliases) for k in KINDS)
_SPLIT = re.compile(r"[;；,，、|/]+")


def sort_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """Facility codes without duplicates, in vocabulary order."""
    return tuple(sorted(set(codes), key=_ORDER.__getitem__))


def parse_facilities(text: str | Iterable[str]) -> tuple[str, ...]:
    """Facility codes from ``"饮水; 充电；microwave"`` or a list of names, in vocabulary order.

    Separators: ``;`` ``；`` ``,`` ``，`` ``、`` ``|`` ``/``. Raises ``UnknownFacilityError`` listing
    every name it does not know.
    """
    parts = _SPLIT.split(text) if isinstance(text, str) else list(text)
    codes: list[str] = []
    unknown: list[str] = []
    for part in parts:
        if not part.strip():
            continue
        code = _FACILITY_LOOKUP.get(_key(part))
        if code is None:
            unknown.append(part.strip())
        else:
            codes.append(code)
    if unknown:
        raise UnknownFacilityError(unknown)
    return sort_codes(codes)


def parse_kind(text: str) -> str:
    """A kind code from a code, an English or a Chinese name; empty means ``station``."""
    if not text.strip():
        return DEFAULT_KIND
    code = _KIND_LOOKUP.get(_key(text))
    if code is None:
        raise UnknownKindError(text.strip())
    return code


def implied_facilities(kind: str, codes: Iterable[str]) -> tuple[str, ...]:
    """``codes`` plus what the kind implies (a water point has drinking water)."""
    k = KIND_BY_CODE.get(kind)
    return sort_codes([*codes, *(k.implies if k else ())])


def facility_mask(codes: Iterable[str]) -> int:
    """The bit mask of facility codes (stored per station and used by the nearest query)."""
    mask = 0
    for code in codes:
        mask |= 1 << FACILITY_BY_CODE[code].bit
    return mask


def filter_masks(filter_codes: Iterable[str]) -> tuple[int, ...]:
    """One mask per filter; a station matches when it shares a bit with every mask."""
    return tuple(facility_mask(FILTER_BY_CODE[code].facilities) for code in sorted(set(filter_codes)))


def icons(codes: Iterable[str]) -> str:
    return "".join(FACILITY_BY_CODE[c].icon for c in sort_codes(codes) if c in FACILITY_BY_CODE)
