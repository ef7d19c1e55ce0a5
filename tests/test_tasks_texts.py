"""The wish-wall and points texts: both languages complete, same placeholders, every outcome worded."""

from bot.i18n import Catalog, placeholders
from bot.points import PointsOutcome
from bot.tasks import Outcome


def test_tasks_texts_complete_in_both_languages():
    catalog = Catalog.load()
    zh = {k: v for k, v in catalog.texts["zh"].items() if k.startswith(("tasks.", "points."))}
    en = {k: v for k, v in catalog.texts["en"].items() if k.startswith(("tasks.", "points."))}
    assert zh.keys() == en.keys()
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key
    for outcome in Outcome:
        assert f"tasks.outcome.{outcome.value}" in zh
    for outcome in PointsOutcome:
        assert f"points.outcome.{outcome.value}" in zh
    assert len(zh["tasks.months"].split(",")) == len(en["tasks.months"].split(",")) == 12
    assert len(zh["tasks.weekdays"].split(",")) == len(en["tasks.weekdays"].split(",")) == 7
