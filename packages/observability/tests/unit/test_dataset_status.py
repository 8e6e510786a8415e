"""A dataset's status message: what its results add up to, in words."""

from __future__ import annotations

from observability.evaluation import DatasetStatus
from observability.monitors import Result


def test_a_dataset_ok_with_an_age_nothing_judges_does_not_say_every_monitor_is_ok() -> None:
    shown = Result("pos", "age", "landing", "unknown", "unjudged", "66d old", "-", "shown only")
    judged = Result("pos", "volume", "2026-10-01", "ok", "normal", "100 rows", "±50%", "fine")

    status = DatasetStatus("pos", "ok", (shown, judged), 66 * 86400.0, None)

    assert status.message == "every monitor is ok but the age of landing, which nothing judges"
