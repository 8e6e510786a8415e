"""The ``[freshness]`` section: thresholds, schedule, holidays and volume, refused precisely."""

from __future__ import annotations

import pickle
from datetime import date, timedelta
from pathlib import Path

import pytest

from etl_core.contracts import ContractError, Holidays, Percent, error_location, load_contract

HEAD = 'dataset = "pos"\nsource = "pos"\npattern = "pos_{date:%Y%m%d}.csv"\n'
COLUMNS = '[[columns]]\nname = "store_id"\n'


def write(config: Path, text: str) -> Path:
    path = config / "datasets" / "pos.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + COLUMNS + text)
    return path


def refused(path: Path) -> list[tuple[str, str, tuple[str, int | None]]]:
    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})
    return [(e.field, e.message, error_location(e)) for e in caught.value.errors]


def test_schedule_holidays_and_volume_are_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[freshness]\n"
        'warn_after = "26h"\ncritical_after = "50h"\n'
        'expected = "0 6 * * 1-5"\ngrace = "2h"\ntimezone = "Europe/Berlin"\n'
        'holidays = ["2026-12-25", 2026-12-26]\nlag_days = 1\nlookback_days = 14\n'
        '[freshness.volume]\nweeks = 6\nwarn_deviation = "25%"\ncritical_deviation = "60%"\n',
    )

    freshness = load_contract(path, environ={}).freshness

    assert freshness.expected == "0 6 * * 1-5"
    assert freshness.grace == timedelta(hours=2)
    assert str(freshness.zone) == "Europe/Berlin"
    assert date(2026, 12, 25) in freshness.holidays
    assert date(2026, 12, 26) in freshness.holidays
    assert (freshness.lag_days, freshness.lookback_days) == (1, 14)
    assert freshness.volume.weeks == 6
    assert freshness.volume.warn_deviation == Percent(0.25)
    assert str(freshness.volume.critical_deviation) == "60%"
    assert pickle.loads(pickle.dumps(freshness)) == freshness


def test_defaults_need_no_section(tmp_path: Path) -> None:
    freshness = load_contract(write(tmp_path, ""), environ={}).freshness
    assert freshness.expected is None
    assert (freshness.timezone, freshness.grace, freshness.lookback_days) == ("UTC", timedelta(), 7)
    assert freshness.holidays == Holidays()
    assert freshness.volume.min_history == 2


def test_a_holiday_file_beside_the_contract_is_read_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[freshness]\nexpected = "0 6 * * *"\nholidays = "../calendars/de.txt"\n'
    )
    calendar = tmp_path / "calendars" / "de.txt"
    calendar.parent.mkdir()
    calendar.write_text("# German public holidays\n2026-12-25 Christmas\n\n2026-12-26\n")

    holidays = load_contract(path, environ={}).freshness.holidays

    assert holidays.dates == {date(2026, 12, 25), date(2026, 12, 26)}


def test_a_bad_line_in_the_holiday_file_names_that_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[freshness]\nholidays = "holidays.txt"\n')
    (path.parent / "holidays.txt").write_text("2026-12-25\n2026-13-01 typo\n")

    ((field, message, (file, line)),) = refused(path)

    assert field == "freshness.holidays"
    assert "holidays.txt:2: expected a date YYYY-MM-DD" in message
    assert (file, line) == (str(path), path.read_text().splitlines().index("[freshness]") + 2)


def test_a_missing_holiday_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[freshness]\nholidays = "nowhere.txt"\n')
    ((field, message, _),) = refused(path)
    assert field == "freshness.holidays"
    assert "cannot read the holiday file" in message


@pytest.mark.parametrize(
    ("section", "field", "message"),
    [
        ('expected = "0 6 * *"\n', "freshness.expected", "five fields"),
        ('expected = "0 6 * * 1-5 2026"\n', "freshness.expected", "five fields"),
        ('expected = "0 30 * * 1-5"\n', "freshness.expected", "hour 30 is not in 0-23"),
        ('timezone = "Mars/Olympus"\n', "freshness.timezone", "IANA time zone"),
        ('grace = "-1h"\n', "freshness.grace", "invalid duration"),
        ("warn_after = 26\n", "freshness.warn_after", "a bare number is seconds: got 26s"),
        ('critical_after = "30s"\n', "freshness.critical_after", "a minute or more"),
        ('holidays = ["2026-02-30"]\n', "freshness.holidays", "item 0: expected a date"),
        ("holidays = 3\n", "freshness.holidays", "an array of dates"),
        ("lag_days = -1\n", "freshness.lag_days", "0 to 366"),
        ("lookback_days = 0\n", "freshness.lookback_days", "1 to 366"),
        ('exepcted = "0 6 * * *"\n', "freshness.exepcted", "did you mean 'expected'"),
        ('[freshness.volume]\nwarn_deviation = "0.3"\n', "freshness.volume.warn_deviation", "%"),
        (
            '[freshness.volume]\nwarn_deviation = "90%"\n',
            "freshness.volume.critical_deviation",
            "larger than warn_deviation",
        ),
        ("[freshness.volume]\nweeks = 2\nmin_history = 3\n", "freshness.volume.min_history", ""),
    ],
)
def test_a_bad_freshness_key_is_refused_naming_its_field_and_line(
    tmp_path: Path, section: str, field: str, message: str
) -> None:
    path = write(tmp_path, "[freshness]\n" + section)
    ((found, said, (file, line)),) = refused(path)
    assert found == field
    assert message in said
    assert file == str(path)
    assert line is not None


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ('grace = "2h"\n', "freshness.grace"),
        ("lag_days = 1\n", "freshness.lag_days"),
        ('holidays = ["2026-12-25"]\n', "freshness.holidays"),
    ],
)
def test_a_schedule_key_without_expected_is_refused_not_ignored(
    tmp_path: Path, section: str, field: str
) -> None:
    """``grace``, ``lag_days`` and ``holidays`` only shape the schedule ``expected`` gives:
    without it nothing is due, so an operator who wrote them (and forgot or commented out
    ``expected``) would believe deliveries are watched while no arrival is ever judged."""
    path = write(tmp_path, '[freshness]\nwarn_after = "26h"\n' + section)
    ((found, said, (file, line)),) = refused(path)
    assert found == field
    assert "only with freshness.expected" in said
    assert file == str(path)
    assert line is not None


def test_schedule_keys_at_their_defaults_need_no_expected(tmp_path: Path) -> None:
    path = write(tmp_path, '[freshness]\nwarn_after = "26h"\ngrace = "0s"\nlag_days = 0\n')
    assert load_contract(path, environ={}).freshness.expected is None


def test_lookback_days_without_expected_is_accepted_as_it_bounds_the_volume_window(
    tmp_path: Path,
) -> None:
    """Unlike ``grace``, ``lag_days`` and ``holidays``, ``lookback_days`` is read without a
    schedule too: the days of row counts the volume result carries (the status page's
    sparkline) and the landing files the storage index keeps; so it is not refused."""
    path = write(tmp_path, '[freshness]\nwarn_after = "26h"\nlookback_days = 30\n')
    freshness = load_contract(path, environ={}).freshness
    assert (freshness.expected, freshness.lookback_days) == (None, 30)
