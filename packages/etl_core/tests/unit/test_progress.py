"""WorkProgress: what finished and what remains, and log lines when there is no terminal."""

from __future__ import annotations

import logging
import time

from etl_core.progress import BYTES, WorkProgress
from etl_core.testing.logs import capture_logs


def test_bytes_read_of_an_object_in_flight_count_before_it_finishes() -> None:
    with WorkProgress("scan", item="object", unit=BYTES, interval=0) as progress:
        progress.plan(2, amount=1_000)
        progress.advance("big.csv", 300)
        midway = progress.summary()
        progress.finish("big.csv", 900)
        progress.finish("small.csv", 100)
        done = progress.summary()

    assert (midway.finished, midway.remaining, midway.done) == (0, 2, 300)
    assert (done.finished, done.remaining, done.done, done.total) == (2, 0, 1_000, 1_000)
    assert done.describe() == "scan: 2 of 2 object(s) finished (1.0 kB of 1.0 kB, 100%), 0 remain"


def test_an_interruption_before_planning_says_so() -> None:
    summary = WorkProgress("run", item="partition", interval=0).summary()
    assert summary.remaining is None
    assert summary.describe() == "run: stopped before its work was planned"


def test_off_a_terminal_progress_is_a_periodic_log_line_with_its_counts() -> None:
    with (
        capture_logs(logging.INFO) as records,
        WorkProgress("backfill pos", item="partition", interval=0.05) as progress,
    ):
        progress.plan(4)
        progress.finish("2026-11-01")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _progress_lines(records):
            time.sleep(0.02)
    (first, *_) = _progress_lines(records)
    assert first["event"].startswith("progress: backfill pos: 1 of 4 partition(s) finished")
    assert (first["finished"], first["remaining"], first["planned"]) == (1, 3, 4)


def test_named_counters_are_described_and_logged_beside_the_items() -> None:
    with (
        capture_logs(logging.INFO) as records,
        WorkProgress("ingest", item="window", interval=0.05) as progress,
    ):
        progress.plan(2)
        progress.count(pages=1, records=1_000)
        progress.count(pages=1, records=500, retries=1)
        progress.count(wait_seconds=0.25)
        summary = progress.summary()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _progress_lines(records):
            time.sleep(0.02)

    assert summary.describe() == (
        "ingest: 0 of 2 window(s) finished, 2 remain; "
        "pages 2, records 1,500, retries 1, wait seconds 0.2"
    )
    (first, *_) = _progress_lines(records)
    assert (first["pages"], first["records"], first["retries"]) == (2, 1_500, 1)
    assert first["wait_seconds"] == 0.25


def test_no_log_line_when_the_interval_is_zero() -> None:
    with (
        capture_logs(logging.INFO) as records,
        WorkProgress("run", item="partition", interval=0) as progress,
    ):
        progress.plan(1)
        progress.finish("a")
    assert _progress_lines(records) == []


def _progress_lines(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [r for r in records if str(r["event"]).startswith("progress:")]


def test_a_bar_shows_a_description_holding_markup_as_it_is() -> None:
    """What is done names datasets and keys: ``[bold]`` stays written, ``[/x]`` raises
    nothing, on a terminal's bar as in the log lines."""
    import io

    from rich.console import Console

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=200, color_system=None)
    work = "backfill vendor[bold]x[/x]"
    with WorkProgress(work, item="partition", console=console, interval=0) as progress:
        progress.plan(1)
        progress._bar.refresh()  # drawn now, not only at the next tick
        progress.finish("one")

    assert work in stream.getvalue()
