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
