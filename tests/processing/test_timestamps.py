"""Timestamps read byte by byte agree with the grammar's regex and the reference's dates."""

from __future__ import annotations

import re
from datetime import date
from itertools import combinations
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.timestamps import (
    _CHUNK_ROWS,
    LAYOUTS,
    TIMESTAMP_PATTERN,
    ZoneOffsets,
    _Layout,
    local_days,
)
from tests import oracle

EPOCH = date(1970, 1, 1)
# What each layout character may be written as, right or wrong.
RIGHT = {
    "9": "0123456789",
    "5": "012345",
    "3": "0123",
    "2": "012",
    "1": "01",
    "T": "Tt ",
    "S": "+-",
    "Z": "Zz",
}
WRONG = "0123456789-:.Tt +Zzx\x00é٣"


def allowed(character: str) -> set[str]:
    return set(RIGHT.get(character, character))


@st.composite
def near_timestamps(draw: st.DrawFn) -> str:
    """A layout written out: right, or with one wrong, missing or extra character."""
    layouts = LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))]
    text = draw(st.sampled_from(layouts)).text
    characters = [draw(st.sampled_from(RIGHT.get(c, c))) for c in text]
    # Dates and hours mostly real, or just past their ends: random digits rarely are.
    characters[:4] = draw(st.sampled_from(["2024", "1899", "1900", "2199", "2200", "0999"]))
    characters[5:7] = draw(st.sampled_from(["01", "12", "02", "00", "13"]))
    characters[8:10] = draw(st.sampled_from(["15", "01", "28", "29", "30", "31", "00", "32"]))
    if len(text) > 10:
        characters[11:13] = draw(st.sampled_from(["12", "00", "23", "24", "29"]))
    if "S" in text:
        hours = text.index("S") + 1
        characters[hours : hours + 2] = draw(st.sampled_from(["01", "00", "14", "23", "24"]))
    damage = draw(st.sampled_from(["none", "wrong", "missing", "extra"]))
    where = draw(st.integers(0, len(characters) - 1))
    if damage == "wrong":
        characters[where] = draw(st.sampled_from(WRONG))
    elif damage == "missing":
        del characters[where]
    elif damage == "extra":
        characters.insert(where, draw(st.sampled_from(WRONG)))
    return "".join(characters)


def expected(value: str, zone_name: str) -> tuple[bool, int]:
    day = oracle._day(value, ZoneInfo(zone_name))
    if re.fullmatch(TIMESTAMP_PATTERN, value) is None or day is None:
        return False, 0
    return True, (day - EPOCH).days


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        near_timestamps() | st.from_regex(TIMESTAMP_PATTERN, fullmatch=True) | st.text(max_size=40),
        max_size=60,
    ),
    zone_name=st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Chatham", "America/St_Johns"]),
)
def test_days_match_the_grammar_and_the_reference(values: list[str], zone_name: str) -> None:
    """Valid where the regex and the reference say so, on the day the reference gives.
    Strings drawn from the regex itself show that the layouts cover all of it."""
    zone = None if zone_name == "UTC" else ZoneOffsets(zone_name)
    valid, days = local_days(pa.array(values, pa.string()), zone)
    assert list(zip(valid.tolist(), days.tolist(), strict=True)) == [
        expected(value, zone_name) for value in values
    ]


def test_every_layout_follows_the_grammar_and_they_cover_it() -> None:
    """45 layouts, each written out a match of the regex, together every form it allows."""
    texts = [layout.text for layouts in LAYOUTS.values() for layout in layouts]
    assert len(texts) == len(set(texts)) == 45
    for text in texts:
        for end, month_day, hour in ((0, "01-01", "00"), (-1, "12-31", "23")):
            written = [RIGHT.get(c, c)[end] for c in text]
            written[5:10] = month_day
            if len(text) > 10:
                written[11:13] = hour
            if "S" in text:
                written[text.index("S") + 1 : text.index("S") + 3] = hour
            assert re.fullmatch(TIMESTAMP_PATTERN, "".join(written)), text


@pytest.mark.parametrize("width", sorted(LAYOUTS))
def test_no_value_fits_two_layouts(width: int) -> None:
    """Layouts of one width differ somewhere in bytes neither allows the other: a value is
    read by at most one of them."""
    for first, second in combinations(LAYOUTS[width], 2):
        assert any(
            not allowed(a) & allowed(b) for a, b in zip(first.text, second.text, strict=True)
        ), (first.text, second.text)


def test_mixed_widths_and_layouts_keep_their_rows() -> None:
    """Widths sorted apart and tried layout by layout still land on their own rows."""
    values = [
        "2024-01-31T09:30:00.123Z",  # width 24, fraction and Z
        "2024-02-30",  # no such date
        "2024-01-31T23:30:00+0100",  # width 24, offset
        "2024-01-31",
        "2024-01-31T09:30:00.1234",  # width 24, fraction
        "2024-01-31T23:30:00-01:00",
        "2024-13-01T00:00:00+0100",
        " 2024-01-31",
    ]
    valid, days = local_days(pa.array(values), None)
    assert valid.tolist() == [True, False, True, True, True, True, False, False]
    jan_31 = (date(2024, 1, 31) - EPOCH).days
    assert days.tolist() == [jan_31, 0, jan_31, jan_31, jan_31, jan_31 + 1, 0, 0]


def test_an_offset_moves_the_day_and_the_range_holds_after_it() -> None:
    """Offsets count; a date just outside the years is valid only if its offset brings it in."""
    values = ["1899-12-31T23:30:00-01:00", "1899-12-31T23:30:00+01:00", "2200-01-01"]
    valid, days = local_days(pa.array(values), None)
    assert valid.tolist() == [True, False, False]
    assert days.tolist() == [(date(1900, 1, 1) - EPOCH).days, 0, 0]


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T24:00:00",
        "2024-01-01T23:59:59+24:00",
        "2024-01-01T23:59:59-2400",
        "2024-01-01T00:00+23:59",
        "2024-01-01T01:30+01:15",  # 00:15 the same day
        "2024-01-01T01:00+01:15",  # 23:45 the day before
        "2024-01-01T22:50:00-01:15",  # 00:05 the day after
        "2024-02-29",
        "2023-02-29",
        "1900-02-29",
        "2000-02-29T12:00:00Z",
        "2024-04-31",
        "2024-01-00",
        "2024-00-10",
        "2024-12-31T23:59:59.999999999-23:59",
    ],
)
@pytest.mark.parametrize("zone_name", ["UTC", "Asia/Kathmandu"])
def test_each_rule_at_its_edge(value: str, zone_name: str) -> None:
    """Hours, offsets, month lengths and leap years at their edges, as the reference reads them."""
    zone = None if zone_name == "UTC" else ZoneOffsets(zone_name)
    valid, days = local_days(pa.array([value]), zone)
    assert (bool(valid[0]), int(days[0])) == expected(value, zone_name)


def test_a_layouts_masks_cover_the_rows_asked_for_and_grow_whole() -> None:
    """Masks tiled for few rows grow when more come (up to a chunk), never shorter than asked."""
    layout = _Layout("9999-19-39T29:59:59Z")
    for rows in (3, 5_000, 2, 40_000, 16_384):
        xor_tile, limit_tile = layout._tiles(rows)
        needed = min(rows, _CHUNK_ROWS) * layout.width
        assert len(xor_tile) == len(limit_tile) >= needed
        assert (xor_tile[:needed].reshape(-1, layout.width) == layout.xor).all()
