"""Every wish-wall and points outcome has its text (test_i18n checks both languages match)."""

from bot.i18n import Catalog
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
