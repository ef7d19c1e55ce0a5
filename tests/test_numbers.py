"""bot.kit.numbers: the one way numbers are read from people and from button data."""

import pytest

from bot.kit.numbers import parse_id, parse_int


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), (" +5 ", 5), ("-3", -3), ("１２", 12), ("－２", -2), ("0", 0), ("9" * 18, int("9" * 18))],
)
def test_numbers_people_type(text, expected):
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    "text", ["²", "² 20020", "٣", "1_000", "1e3", "9" * 19, "", " ", "+", "1.5", None, "0x10"]
)
def test_what_is_not_a_number(text):
    assert parse_int(text) is None


def test_ids_are_positive_without_sign():
    assert parse_id("20020") == 20020
    assert parse_id("+5") is None and parse_id("-5") is None and parse_id("0") is None
