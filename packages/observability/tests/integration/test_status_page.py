"""The status page from real evaluations: served at `/` from the cycle's snapshot, written by
`check --html`, replayed by `check --at`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from etl_core.storage import open_store
from observability import service as service_module
from observability.evaluation import evaluate
from observability.page import render_page
from observability.service import StatusService, build_app

Cli = Callable[..., subprocess.CompletedProcess[str]]

CONTRACT = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
[freshness]
expected = "0 6 * * *"
grace = "2h"
lookback_days = 5
"""
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def on(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 moment in UTC."""
    return NOV.replace(day=day, hour=hour, minute=minute)


def configure(tmp_path: Path, lake: Any) -> list[str]:
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "pos.toml").write_text(CONTRACT)
    return ["--config-dir", str(tmp_path / "config"), "--storage", str(lake.root)]


def fill(lake: Any) -> None:
    """Files for 6, 7 (late) and 9 November; the 8th never came."""
    for day, hour in ((6, 5), (7, 11), (9, 5)):
        lake.drop("pos", f"pos_202611{day:02d}.csv", on(day, hour))
        lake.curate("pos", date(2026, 11, day), 100 * day, on(day, hour + 1))


def test_the_page_is_served_from_the_cycles_snapshot(
    lake: Any, clock: Any, weekday_contract: Any, berlin: Any
) -> None:
    lake.drop("pos", "pos_20261201.csv", berlin(1, 5))
    clock.set(berlin(1, 12))
    service = StatusService([weekday_contract()], lake.store, clock, interval=timedelta(seconds=60))
    client = TestClient(build_app(service))  # no lifespan: cycles run only when asked

    before = client.get("/")
    snapshot = service.refresh()
    after = client.get("/")

    assert before.status_code == 503
    assert "first evaluation has not finished" in before.text
    assert after.status_code == 200
    assert after.headers["content-type"] == "text/html; charset=utf-8"
    assert after.content == snapshot.page  # a copy of what the cycle drew
    assert 'data-day="2026-12-01" data-state="on_time"' in after.text
    assert '<meta http-equiv="refresh" content="60">' in after.text
    lake.drop("pos", "pos_20261202.csv", berlin(2, 5))
    assert client.get("/").content == snapshot.page  # the store is read by cycles only


def test_a_page_that_cannot_be_drawn_leaves_the_metrics_and_status_served(
    lake: Any, clock: Any, weekday_contract: Any, berlin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(document: Any, **options: Any) -> str:
        raise TypeError("a drawing bug")

    monkeypatch.setattr(service_module, "render_page", broken)
    clock.set(berlin(1, 12))
    service = StatusService([weekday_contract()], lake.store, clock, interval=timedelta(minutes=1))
    client = TestClient(build_app(service))

    snapshot = service.refresh()

    assert b"etl_observability_dataset_level" in snapshot.metrics
    assert b'"datasets"' in snapshot.status
    assert client.get("/api/status").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    assert "could not be drawn" in page.text


def test_the_page_shows_what_the_status_document_shows(
    lake: Any, clock: Any, weekday_contract: Any, berlin: Any
) -> None:
    lake.drop("pos", "pos_20261201.csv", berlin(1, 5))
    lake.drop("pos", "pos_20261205.csv", berlin(5, 9))  # a Saturday: nothing is due
    clock.set(berlin(7, 12))  # Monday noon: Wednesday to Friday never came, Monday neither

    evaluation = evaluate([weekday_contract()], lake.store, clock)
    html = render_page(evaluation.to_dict())

    states = {r.subject: r.state for r in evaluation.results if r.monitor == "arrival"}
    for day, state in states.items():
        assert f'data-day="{day}" data-state="{state}"' in html
    assert states["2026-12-05"] == "unexpected"
    assert 'data-day="2026-12-06" data-state="not_due"' in html  # Sunday: no result, no file


def test_check_html_writes_the_page_and_exits_1_on_a_missing_day(
    cli: Cli, tmp_path: Path, lake: Any
) -> None:
    options = configure(tmp_path, lake)
    fill(lake)
    target = tmp_path / "site" / "status.html"

    result = cli(*options, "check", "--at", "2026-11-09T12:00:00+00:00", "--html", str(target))

    assert result.returncode == 1, result.stderr
    html = target.read_text()
    assert 'data-dataset="pos" data-level="critical"' in html
    for day, state in (("06", "on_time"), ("07", "late"), ("08", "missing"), ("09", "on_time")):
        assert f'data-day="2026-11-{day}" data-state="{state}"' in html
    assert "http-equiv" not in html  # a static file does not reload itself
    assert "status page written to" in result.stderr


def test_check_at_evaluates_as_of_that_instant(cli: Cli, tmp_path: Path, lake: Any) -> None:
    options = configure(tmp_path, lake)
    fill(lake)

    at_7am = cli(*options, "check", "--at", "2026-11-08T07:00:00Z", "--json")
    at_9am = cli(*options, "check", "--at", "2026-11-08T09:00", "--json")

    assert (at_7am.returncode, at_9am.returncode) == (1, 1), at_9am.stderr
    assert arrivals(at_7am.stdout)["2026-11-07"] == "late"  # came 11:00
    assert arrivals(at_7am.stdout)["2026-11-08"] == "pending"  # due 06:00, grace until 08:00
    assert arrivals(at_9am.stdout)["2026-11-08"] == "missing"
    assert '"evaluated_at": "2026-11-08T09:00:00+00:00"' in at_9am.stdout  # UTC if no offset


def test_check_at_leaves_out_what_was_stored_after_the_instant(
    cli: Cli, tmp_path: Path, lake: Any
) -> None:
    options = configure(tmp_path, lake)
    fill(lake)  # the 7th's file came at 11:00, the 9th's partition was curated on the 9th

    result = cli(*options, "check", "--at", "2026-11-07T09:00:00Z", "--json")

    assert result.returncode == 1, result.stderr
    assert arrivals(result.stdout)["2026-11-07"] == "missing"  # not "late": not there yet
    (status,) = json.loads(result.stdout)["datasets"]
    (curated,) = [r for r in status["results"] if r["subject"] == "curated"]
    assert curated["detail"]["newest"] == "2026-11-06T06:00:00+00:00"
    assert status["latest_partition"] == "2026-11-06"


@pytest.mark.parametrize("at", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_check_at_an_instant_beyond_the_calendar_is_a_usage_error(
    cli: Cli, tmp_path: Path, lake: Any, at: str
) -> None:
    options = configure(tmp_path, lake)
    fill(lake)

    result = cli(*options, "check", "--at", at)

    assert result.returncode == 2, result.stderr
    assert f"expected an instant in the years 1970 to 9990, got '{at}'" in result.stderr
    assert "Traceback" not in result.stderr


def arrivals(report: str) -> dict[str, str]:
    """Arrival state per day of a ``check --json`` report."""
    (pos,) = json.loads(report)["datasets"]
    return {r["subject"]: r["state"] for r in pos["results"] if r["monitor"] == "arrival"}


def test_an_unwritable_page_is_an_error_naming_the_file(
    cli: Cli, tmp_path: Path, lake: Any
) -> None:
    options = configure(tmp_path, lake)
    (tmp_path / "blocker").write_text("a file, not a folder")
    target = tmp_path / "blocker" / "status.html"

    result = cli(*options, "check", "--html", str(target))

    assert result.returncode == 2, result.stderr  # a bad argument, not late data (1)
    assert f"status page {target} cannot be written" in result.stderr


def test_a_page_of_an_empty_store_says_nothing_arrived(tmp_path: Path) -> None:
    with open_store(str(tmp_path)) as store:
        evaluation = evaluate([], store, type("C", (), {"now": lambda self: NOV})())

    assert "No dataset is watched yet" in render_page(evaluation.to_dict())
