"""Every wish-wall and points outcome has its text (test_i18n checks both languages match)."""

from bot.core.i18n import Catalog
from bot.points import PointsOutcome
from bot.tasks import Outcome


def test_every_outcome_is_worded():
    catalog = Catalog.load()
    for outcome in Outcome:
        assert catalog.has(f"tasks.outcome.{outcome.value}")
    for outcome in PointsOutcome:
        assert catalog.has(f"points.outcome.{outcome.value}")
    for lang in ("zh", "en"):
        assert len(catalog.t(lang, "tasks.months").split(",")) == 12
        assert len(catalog.t(lang, "tasks.weekdays").split(",")) == 7


COUNTS = {"n", "count", "groups", "slots", "left", "taken", "points", "balance", "hours", "minutes"}
COUNTS |= {"waiting", "place", "km", "delta", "days"}


def test_english_counts_read_right_for_one():
    """Texts with a count read right for 1: worded so, or with a plural form ({n:one|other})."""
    import re

    from bot.core.i18n import placeholders

    catalog = Catalog.load()
    for key in [*catalog.keys("tasks."), *catalog.keys("points.")]:
        template = catalog.texts["en"][key]
        # Counts that can be 1 (`limit` and `max` are constants; names and titles are not counts).
        values = {name: 1 if name in COUNTS else "X" for name in placeholders(template)}
        text = catalog.t("en", key, **values)
        assert not re.search(r"\b1 (?!h\b|min\b|km\b)[a-z]+s\b", text), (key, text)
