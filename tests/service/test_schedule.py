"""The render window, including windows that wrap past midnight."""

from datetime import datetime

import pytest

from voxd.config import _parse_window
from voxd.service.schedule import describe, in_window, next_opening


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, 23, hh, mm)


@pytest.mark.parametrize(
    "window, time, expected",
    [
        ("23:00-07:00", at(23, 0), True),
        ("23:00-07:00", at(2, 30), True),
        ("23:00-07:00", at(6, 59), True),
        ("23:00-07:00", at(7, 0), False),
        ("23:00-07:00", at(12, 0), False),
        ("09:00-17:30", at(9, 0), True),
        ("09:00-17:30", at(17, 29), True),
        ("09:00-17:30", at(17, 30), False),
        ("09:00-17:30", at(8, 59), False),
        ("00:00-24:00", at(23, 59), True),
    ],
)
def test_in_window(window, time, expected):
    assert in_window(time, _parse_window(window)) is expected


def test_no_window_is_always_open():
    assert in_window(at(3), None)
    assert next_opening(at(3), None) == at(3)
    assert describe(None) == "any time"


def test_next_opening_today_or_tomorrow():
    night = _parse_window("23:00-07:00")
    assert next_opening(at(12), night) == at(23)
    assert next_opening(at(2), night) == at(2)  # open now
    day = _parse_window("09:00-17:00")
    assert next_opening(at(18), day) == datetime(2026, 11, 24, 9, 0)
    assert describe(night) == "23:00-07:00"


@pytest.mark.parametrize("bad", ["23-07", "25:00-07:00", "10:00-10:00", "soon", "10:60-11:00"])
def test_bad_windows_are_refused(bad):
    with pytest.raises(ValueError):
        _parse_window(bad)
