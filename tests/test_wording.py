"""The shared wording helpers: rates, durations and times as an officer reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from openlfr.wording import duration_in_words, format_time, rate_in_words


@pytest.mark.parametrize(
    ("rate", "words"),
    [
        (0.0, "none"),
        (2.57e-05, "about 1 in 39,000"),
        (1e-3, "about 1 in 1,000"),
        (0.25, "about 1 in 4"),
        (1 / 37, "about 1 in 37"),
        (1 / 123_456, "about 1 in 120,000"),
        (1.0, "every time"),
    ],
)
def test_rate_in_words(rate: float, words: str) -> None:
    assert rate_in_words(rate) == words


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_rate_in_words_refuses_nonsense(bad: float) -> None:
    with pytest.raises(ValueError):
        rate_in_words(bad)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (45.4, "45 s"),
        (60, "1 min"),
        (200, "3 min 20 s"),
        (2 * 3600 + 5 * 60 + 7, "2 h 5 min"),
        (3600, "1 h"),
        (86_400, "1 day"),
        (5 * 86_400 + 23 * 3600 + 59 * 60, "5 days 23 h"),
        (30 * 86_400, "30 days"),
    ],
)
def test_duration_in_words(seconds: float, words: str) -> None:
    assert duration_in_words(seconds) == words


def test_duration_in_words_refuses_negative() -> None:
    with pytest.raises(ValueError):
        duration_in_words(-1)


def test_format_time_has_no_microseconds_and_no_t() -> None:
    moment = datetime(2026, 11, 30, 14, 5, 9, 123456, tzinfo=UTC)
    assert format_time(moment) == "30 Nov 2026 14:05:09"


def test_format_time_treats_naive_as_utc_and_converts_to_the_force_zone() -> None:
    summer = datetime(2026, 7, 1, 9, 0, 0)
    assert format_time(summer, "Europe/London") == "1 Jul 2026 10:00:00"
    assert format_time(summer, timezone(timedelta(hours=-5))) == "1 Jul 2026 04:00:00"
    assert format_time(None) == ""
