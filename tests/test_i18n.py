from bot.core.i18n import LANGUAGES, Catalog, placeholders, resolve_language


def test_every_key_in_every_language_with_the_same_placeholders():
    catalog = Catalog.load()
    zh, en = catalog.texts["zh"], catalog.texts["en"]
    assert set(zh) - set(en) == set(), "keys missing from en"
    assert set(en) - set(zh) == set(), "keys missing from zh"
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key
    assert LANGUAGES == ("zh", "en")


def test_texts_format_without_errors():
    catalog = Catalog.load()
    for lang in LANGUAGES:
        for key, template in catalog.texts[lang].items():
            catalog.t(lang, key, **{name: "x" for name in placeholders(template)})


def test_language_resolution():
    assert resolve_language(None, "zh-hans") == "zh"
    assert resolve_language(None, "en-GB") == "en"
    assert resolve_language(None, "ru") == "zh"
    assert resolve_language("en", "zh") == "en"
    assert resolve_language(None, None, default="en") == "en"


def test_plural_forms_pick_the_word_for_the_number():
    """`{n:one|other}` in a text picks the English word for n (a count read from text too)."""
    catalog = Catalog.load()
    assert catalog.t("en", "meetings.rule.count", n=1) == ", 1 time"
    assert catalog.t("en", "meetings.rule.count", n="1") == ", 1 time"
    assert catalog.t("en", "meetings.rule.count", n=3) == ", 3 times"
    assert (
        catalog.t("en", "tasks.post.published", title="T", groups=1)
        == '✅ "T" is published and posted to 1 group.'
    )
    assert catalog.t("en", "tasks.post.published", title="T", groups=2).endswith("posted to 2 groups.")
    assert catalog.t("en", "meetings.ui.created", title="T", groups=1).startswith(
        "✅ “T” is scheduled; 1 group was told"
    )
    assert "2 groups were told" in catalog.t("en", "meetings.ui.created", title="T", groups=2)
    assert catalog.t("zh", "tasks.post.published", title="T", groups=1) == "✅ 「T」已发布，发到了 1 个群。"


COUNTS = {"n", "count", "groups", "slots", "left", "taken", "points", "balance", "hours", "minutes", "held"}
COUNTS |= {"waiting", "days", "total", "sent", "failed", "skipped", "remaining", "yes", "no", "maybe"}
# `limit` is left out: a limit of characters is never 1; the configurable ones (photos, reports a day,
# topics) are worded with plural forms and checked on their own.
LIMITS = (
    "reports.error.too_many_photos",
    "reports.error.daily_limit",
    "reports.flow.ask_photos",
    "meetings.error.too_many_topics",
)


def test_english_reads_right_for_one_everywhere():
    """No "1 groups", "1 times", "1 photo(s)" in any English text: counts of 1 read as one."""
    import re

    catalog = Catalog.load()
    for key, template in catalog.texts["en"].items():
        values = {name: 1 if name in COUNTS else "X" for name in placeholders(template)}
        text = catalog.t("en", key, **values)
        assert not re.search(r"\b1 (?!h\b|min\b|km\b|d\b)[a-z]+s\b", text), (key, text)
        assert "(s)" not in text, (key, text)
    for key in LIMITS:
        text = catalog.t("en", key, limit=1)
        assert " 1 " in text and not re.search(r"\b1 [a-z]+s\b", text), (key, text)
    for key in (*LIMITS, "meetings.error.too_many_topics"):
        assert " 1 " in catalog.t("en", key, limit=1) and not re.search(
            r"\b1 [a-z]+s\b", catalog.t("en", key, limit=1)
        )


def test_english_has_no_chinese_punctuation_and_prompts_no_datum_names():
    """Full-width brackets, colons and commas are Chinese; "WGS-84" means nothing to a courier
    (a prompt says: send a location, or type coordinates such as 30.2741, 120.1551)."""
    catalog = Catalog.load()
    for key, text in catalog.texts["en"].items():
        assert not set(text) & set("（）：，。「」"), (key, text)
    for lang in LANGUAGES:
        for key, text in catalog.texts[lang].items():
            assert "WGS" not in text, (lang, key, text)
    assert "30.2741, 120.1551" in catalog.t("zh", "stations.ui.add_location")


def test_zone_names_as_people_say_them():
    catalog = Catalog.load()
    assert catalog.zone_name("zh", "Asia/Shanghai") == "北京时间"
    assert catalog.zone_name("en", "Asia/Shanghai") == "Beijing time"
    assert catalog.zone_name("zh", "Europe/Berlin") == "Europe/Berlin"
    assert "北京时间" in catalog.t("zh", "broadcast.ask_when", tz=catalog.zone_name("zh", "Asia/Shanghai"))
