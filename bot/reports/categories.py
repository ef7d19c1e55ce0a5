"""The vocabulary of reports: two kinds, their categories and icons.

Codes are stable (stored in the database, used in callback data and exports); labels live in the
catalogs under `reports.kind.<kind>` and `reports.cat.<kind>.<category>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.core.i18n import Catalog
from storage.reports import KIND_PREFIX as KIND_PREFIX
from storage.reports import format_ref as format_ref

Kind = Literal["grievance", "hazard"]

GRIEVANCE: Kind = "grievance"
HAZARD: Kind = "hazard"
KINDS: tuple[Kind, ...] = (GRIEVANCE, HAZARD)

# Reference prefixes (G-0017, H-0042): KIND_PREFIX and format_ref live with the rows in storage.reports.
PREFIX_KIND: dict[str, Kind] = {"G": GRIEVANCE, "H": HAZARD}
KIND_ICON: dict[str, str] = {GRIEVANCE: "📝", HAZARD: "⚠️"}

# Access and entry conflicts (门难进、车难停、楼难找、梯难乘) also record the compound and its property company.
ACCESS = "access"
OTHER = "other"


@dataclass(frozen=True)
class Category:
    kind: Kind
    code: str
    icon: str

    @property
    def key(self) -> str:
        return f"reports.cat.{self.kind}.{self.code}"


GRIEVANCE_CATEGORIES: tuple[Category, ...] = (
    Category(GRIEVANCE, ACCESS, "🚪"),
    Category(GRIEVANCE, "parking", "🅿️"),
    Category(GRIEVANCE, "wages", "💰"),
    Category(GRIEVANCE, "platform", "📱"),
    Category(GRIEVANCE, "accident_insurance", "🩹"),
    Category(GRIEVANCE, "fine", "🧾"),
    Category(GRIEVANCE, "harassment", "🛑"),
    Category(GRIEVANCE, OTHER, "💬"),
)

HAZARD_CATEGORIES: tuple[Category, ...] = (
    Category(HAZARD, "road_damage", "🚧"),
    Category(HAZARD, "manhole", "🕳️"),
    Category(HAZARD, "flooding", "🌊"),
    Category(HAZARD, "fallen_tree_wires", "🌳"),
    Category(HAZARD, "streetlight_facility", "💡"),
    Category(HAZARD, "fire_risk", "🔥"),
    Category(HAZARD, "traffic_accident", "🚨"),
    Category(HAZARD, "person_in_need", "🆘"),
    Category(HAZARD, OTHER, "📌"),
)

_BY_KIND: dict[str, tuple[Category, ...]] = {GRIEVANCE: GRIEVANCE_CATEGORIES, HAZARD: HAZARD_CATEGORIES}


def is_kind(value: str) -> bool:
    return value in _BY_KIND


def categories(kind: str) -> tuple[Category, ...]:
    return _BY_KIND.get(kind, ())


def category(kind: str, code: str) -> Category | None:
    for item in categories(kind):
        if item.code == code:
            return item
    return None


def is_access(kind: str, code: str) -> bool:
    return kind == GRIEVANCE and code == ACCESS


def kind_label(catalog: Catalog, lang: str | None, kind: str, *, icon: bool = True) -> str:
    text = catalog.t(lang, f"reports.kind.{kind}")
    return f"{KIND_ICON[kind]} {text}" if icon and kind in KIND_ICON else text


def category_label(catalog: Catalog, lang: str | None, kind: str, code: str, *, icon: bool = True) -> str:
    item = category(kind, code)
    if item is None:
        return code
    text = catalog.t(lang, item.key)
    return f"{item.icon} {text}" if icon else text


_REF = re.compile(r"^\s*#?([GHgh])\s*[-－—–_]?\s*0*(\d{1,9})\s*$")


def parse_ref(text: str) -> tuple[Kind, int] | None:
    """'H-0042', 'h42', 'H－42' -> ('hazard', 42); anything else -> None."""
    match = _REF.match(text or "")
    if not match:
        return None
    seq = int(match.group(2))
    if seq <= 0:
        return None
    return PREFIX_KIND[match.group(1).upper()], seq
