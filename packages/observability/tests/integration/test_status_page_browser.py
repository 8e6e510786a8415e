"""The status page of `etl-observability serve`, loaded in headless Chromium (Debian `chromium`).

Chromium runs without any driver library: ``--dump-dom`` prints the page as the browser
built it and ``--screenshot`` saves what it drew (kept in the test's temporary folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.ports import free_port
from etl_core.testing.services import service_unavailable

POS = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv*"
[[columns]]
name = "id"
[freshness]
warn_after = "26h"
critical_after = "50h"
expected = "30 5 * * *"
grace = "1h"
"""
SALES = """
dataset = "sales"
source = "sales"
pattern = "sales_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
"""
HOSTILE = "<script>document.title='owned'<img src=x onerror=document.title='owned'>"
"""A vendor's file name that would run if drawn unescaped (no ``/``: it stays a file name)."""
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        service_unavailable("chromium", "binary not found (Debian package 'chromium')")
    assert found is not None
    return found


def browse(tmp_path: Path, url: str, *args: str) -> str:
    """Chromium's stdout for ``url`` with ``args``, in a fresh profile (bounded in time)."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    done = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """The start tags of a dumped DOM, with their attributes, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_attr(self, name: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.tags if name in attrs]


def wait_for(url: str, *, seconds: float = 60) -> None:
    """Return once ``url`` answers 200 (bounded wait)."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {seconds}s: {last!r}")


def fill(lake: Any, today: date, now: datetime) -> dict[date, str]:
    """Six days of the 05:30 UTC pos feed: on time, one late, one missing, one hostile key;
    curated rows for the sparkline and a quarantined file. The expected state per day."""
    expected: dict[date, str] = {}
    for back in range(1, 7):
        day = today - timedelta(days=back)
        due = datetime.combine(day, datetime.min.time(), UTC).replace(hour=5, minute=30)
        if back == 3:
            expected[day] = "missing"
            continue
        arrived = due + timedelta(hours=5) if back == 2 else due
        suffix = HOSTILE if back == 4 else ""
        key = lake.drop("pos", f"pos_{day:%Y%m%d}.csv{suffix}", arrived)
        expected[day] = "late" if back == 2 else "on_time"
        if back == 5:
            lake.quarantine("pos", day, key, "pgp.no_key")
        else:
            lake.curate("pos", day, 1000 + 150 * back, arrived + timedelta(minutes=10))
    return expected


@pytest.fixture
def served(tmp_path: Path, lake: Any) -> Iterator[tuple[str, dict[date, str]]]:
    """``serve`` on 127.0.0.1 over the filled lake; its base URL and the expected states."""
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "pos.toml").write_text(POS)
    (datasets / "sales.toml").write_text(SALES)
    now = datetime.now(UTC)
    expected = fill(lake, now.date(), now)
    port = free_port()
    script = Path(sys.executable).parent / "etl-observability"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    process = subprocess.Popen(
        [
            str(script),
            "--config-dir",
            str(tmp_path / "config"),
            "--storage",
            str(lake.root),
            "serve",
            "--port",
            str(port),
            "--interval",
            "30s",
        ],
        cwd=tmp_path,
        env={**env, "ETL_LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/")
        yield base, expected
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_chromium_shows_each_dataset_with_its_level_and_each_days_arrival(
    served: tuple[str, dict[date, str]], tmp_path: Path
) -> None:
    base, expected = served

    raw = browse(tmp_path, f"{base}/", "--dump-dom")
    dom = Dom(raw)
    screenshot = tmp_path / "page.png"
    browse(tmp_path, f"{base}/", f"--screenshot={screenshot}", "--window-size=1280,900")

    cards = {card["data-dataset"]: card["data-level"] for card in dom.with_attr("data-dataset")}
    assert cards == {"pos": "critical", "sales": "unknown"}  # a missing day is critical
    cells = {cell["data-day"]: cell for cell in dom.with_attr("data-day")}
    for day, state in expected.items():
        assert cells[day.isoformat()]["data-state"] == state, day
    hostile = (min(expected) + timedelta(days=2)).isoformat()
    assert HOSTILE in cells[hostile]["title"]  # shown as text in the tooltip...
    assert [tag for tag, _ in dom.tags if tag in ("script", "img")] == []  # ...never run
    text = " ".join(" ".join(dom.text).split())
    assert re.search(r"<title>(.*?)</title>", raw)[1] == "critical · data freshness"  # type: ignore[index]
    assert "did not arrive" in text
    assert "pgp.no_key" in text
    assert "no schedule" in text  # sales has no expected arrivals to draw
    assert len([tag for tag, _ in dom.tags if tag == "circle"]) == 4  # four curated days
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a drawn page, not a blank one
