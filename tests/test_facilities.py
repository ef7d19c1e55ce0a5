import pytest

from bot.core.i18n import Catalog, placeholders
from bot.stations import facilities as fac


def test_bits_are_unique_and_fit_in_a_signed_64_bit_integer():
    bits = [f.bit for f in fac.FACILITIES]
    assert len(bits) == len(set(bits))
    assert all(0 <= b < 63 for b in bits)
    assert len({f.code for f in fac.FACILITIES}) == len(fac.FACILITIES)


def test_parse_codes_english_and_chinese_names():
    assert fac.parse_facilities("饮水; 充电；微波炉") == ("drinking_water", "phone_charging", "microwave")
    assert fac.parse_facilities("toilet, Wi-Fi、hot_water") == ("hot_water", "toilet", "wifi")
    assert fac.parse_facilities("") == ()
    assert fac.parse_facilities(["换电", "battery_swap"]) == ("battery_swap",)
    with pytest.raises(fac.UnknownFacilityError) as err:
        fac.parse_facilities("饮水; 游泳池; sauna")
    assert err.value.names == ["游泳池", "sauna"]


def test_kinds():
    assert fac.parse_kind("") == "station"
    assert fac.parse_kind("小哥食堂") == "canteen"
    assert fac.parse_kind("Battery cabinet") == "battery_cabinet"
    assert fac.parse_kind("党群服务中心") == "party_center"
    with pytest.raises(fac.UnknownKindError):
        fac.parse_kind("spaceport")
    assert fac.implied_facilities("water_point", ["toilet"]) == ("drinking_water", "toilet")


def test_masks_and_filters():
    mask = fac.facility_mask(["drinking_water", "toilet"])
    assert mask == (1 << 0) | (1 << 8)
    (charge,) = fac.filter_masks(["charge"])
    assert charge & fac.facility_mask(["ebike_charging"])
    assert not charge & mask
    assert fac.icons(["toilet", "drinking_water"]) == "💧🚻"


def test_every_code_has_labels_and_labels_parse_back():
    catalog = Catalog.load()
    for lang in ("zh", "en"):
        for f in fac.FACILITIES:
            label = catalog.t(lang, f"stations.facility.{f.code}")
            assert fac.parse_facilities(label) == (f.code,), (lang, label)
        for k in fac.KINDS:
            assert fac.parse_kind(catalog.t(lang, f"stations.kind.{k.code}")) == k.code
        for flt in fac.FILTERS:
            assert catalog.t(lang, f"stations.filter.{flt.code}")


def test_catalogs_complete_with_equal_placeholders():
    catalog = Catalog.load()
    zh = {k: v for k, v in catalog.texts["zh"].items() if k.startswith("stations.")}
    en = {k: v for k, v in catalog.texts["en"].items() if k.startswith("stations.")}
    assert zh.keys() == en.keys()
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key
