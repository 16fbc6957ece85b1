"""The pages' wording filters: what templates hold (ISO strings, None) as an officer reads it, on the force's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from openlfr import config
from openlfr.web import formatting as fmt
from openlfr.web.render import templates


@pytest.fixture(autouse=True)
def london(monkeypatch) -> None:
    monkeypatch.delenv(config.ENV_TIME_ZONE, raising=False)


def test_times_in_the_force_zone_without_microseconds_or_iso_t(monkeypatch) -> None:
    assert fmt.when("2026-11-30T14:05:09.123456+00:00") == "30 Nov 2026 14:05:09"  # GMT in winter
    assert fmt.when("2026-07-01T13:05:09+00:00") == "1 Jul 2026 14:05:09"  # BST in summer
    assert fmt.when(datetime(2026, 7, 1, 13, 5, 9)) == "1 Jul 2026 14:05:09"  # naive: the store's UTC
    assert fmt.when_minute("2026-07-01T13:05:09+00:00") == "1 Jul 2026 14:05"
    assert fmt.when(None) == "—" and fmt.when("not a time") == "not a time"
    monkeypatch.setenv(config.ENV_TIME_ZONE, "Australia/Sydney")
    assert fmt.when("2026-11-30T14:05:09+00:00") == "1 Dec 2026 01:05:09"
    assert fmt.zone_name() == "Australia/Sydney"


def test_calendar_days_are_not_moved_between_zones(monkeypatch) -> None:
    monkeypatch.setenv(config.ENV_TIME_ZONE, "Pacific/Honolulu")
    assert fmt.day("2026-09-05") == "5 Sep 2026" and fmt.day(date(2026, 9, 5)) == "5 Sep 2026"
    assert fmt.day("2026-09-05T02:00:00+00:00") == "4 Sep 2026"  # a moment is a day on the force's clock
    assert fmt.day(None) == "—"


def test_windows_name_the_end_date_only_when_it_differs() -> None:
    assert fmt.window("2026-11-30T14:00:00+00:00", "2026-11-30T18:00:00+00:00") == "30 Nov 2026 14:00 to 18:00"
    assert fmt.window("2026-11-30T22:00:00+00:00", "2026-12-01T02:00:00+00:00") == "30 Nov 2026 22:00 to 1 Dec 2026 02:00"


def test_rates_and_durations_in_words() -> None:
    assert fmt.rate(2.57e-05) == "about 1 in 39,000" and fmt.rate(None) == "—" and fmt.rate(0) == "none"
    assert fmt.rate_interval("2.6e-05 to 4.1e-05") == "about 1 in 38,000 to 1 in 24,000"
    assert fmt.rate_interval(None) == "—" and fmt.rate_interval("unparsed") == "unparsed"
    assert fmt.duration(5 * 86_400 + 23 * 3_600 + 59) == "5 days 23 h"
    assert fmt.duration(timedelta(days=31)) == "31 days"
    assert fmt.minutes(240.0) == "4 h" and fmt.minutes(None) == "—"
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert fmt.until("2026-12-06T11:00:00+00:00", now) == "in 5 days 23 h"
    assert fmt.until("2026-11-30T10:00:00+00:00", now) == "overdue by 2 h"


def test_form_fields_are_filled_and_read_on_the_force_clock(monkeypatch) -> None:
    assert fmt.input_value("2026-07-01T13:05:00+00:00") == "2026-07-01T14:05"
    assert fmt.from_input("2026-07-01T14:05") == datetime(2026, 7, 1, 13, 5, tzinfo=UTC)
    assert fmt.from_input("2026-07-01T14:05+02:00") == datetime(2026, 7, 1, 12, 5, tzinfo=UTC)  # typed offset wins
    with pytest.raises(ValueError):
        fmt.from_input("tomorrow")


def test_every_filter_is_registered_on_the_pages_environment() -> None:
    for name in fmt.FILTERS:
        assert name in templates.env.filters, name
    rendered = templates.env.from_string("{{ t|when }} · {{ r|rate }} · {{ window(t, t) }}").render(
        t="2026-11-30T14:05:09+00:00", r=2.57e-05
    )
    assert rendered == "30 Nov 2026 14:05:09 · about 1 in 39,000 · 30 Nov 2026 14:05 to 14:05"


def test_force_name_and_contact_are_configuration(monkeypatch) -> None:
    for name in (config.ENV_FORCE_NAME, config.ENV_FORCE_CONTACT, config.ENV_CONTACT_LEGACY):
        monkeypatch.delenv(name, raising=False)
    assert config.force_name() is None and config.force_contact() is None
    monkeypatch.setenv(config.ENV_CONTACT_LEGACY, "old@force.example")
    assert config.force_contact() == "old@force.example"
    monkeypatch.setenv(config.ENV_FORCE_CONTACT, " lfr@force.example ")
    monkeypatch.setenv(config.ENV_FORCE_NAME, "Westshire Police")
    assert config.force_contact() == "lfr@force.example" and config.force_name() == "Westshire Police"
    monkeypatch.setenv(config.ENV_TIME_ZONE, "Nowhere/Special")
    with pytest.raises(ValueError, match="is not a time zone"):
        config.time_zone()
