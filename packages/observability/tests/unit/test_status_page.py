"""The status page drawn from status documents: every state, hostile text, absent keys."""

from __future__ import annotations

import pickle
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from observability.errors import StatusPageError
from observability.page import render_page, write_page


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

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

    def joined(self) -> str:
        return " ".join(" ".join(self.text).split())


def arrival(day: str, state: str, level: str = "ok", **detail: str) -> dict[str, Any]:
    return {
        "dataset": "pos",
        "monitor": "arrival",
        "subject": day,
        "level": level,
        "state": state,
        "observed": f"observed {state}",
        "threshold": "due 06:00",
        "why": f"why {state}",
        "value": None,
        "detail": detail,
    }


def age(zone: str, level: str = "ok") -> dict[str, Any]:
    return {
        "dataset": "pos",
        "monitor": "age",
        "subject": zone,
        "level": level,
        "state": "fresh",
        "observed": f"{zone} 3h old",
        "threshold": "warn 26h",
        "why": f"{zone} is fine",
        "value": 10800.0,
        "detail": {},
    }


def volume(recent: str, level: str = "unknown") -> dict[str, Any]:
    return {
        "dataset": "pos",
        "monitor": "volume",
        "subject": "2026-11-11",
        "level": level,
        "state": "no_baseline",
        "observed": "300 rows",
        "threshold": "median",
        "why": "only 1 earlier Wednesdays",
        "value": 300.0,
        "detail": {"zone": "curated", "history": "", "recent": recent},
    }


def dataset(name: str, level: str, results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "dataset": name,
        "level": level,
        "message": f"{name} is {level}",
        "age_seconds": 10800.0,
        "latest_partition": "2026-11-11",
        "results": results,
        **extra,
    }


def status(*datasets: dict[str, Any], **keys: Any) -> dict[str, Any]:
    counts = dict.fromkeys(("ok", "warn", "critical", "unknown"), 0)
    for entry in datasets:
        counts[entry["level"]] += 1
    return {
        "evaluated_at": "2026-11-11T12:00:00+00:00",
        "level": "critical" if counts["critical"] else "ok",
        "counts": counts,
        "datasets": list(datasets),
        **keys,
    }


EVERY_STATE = [
    arrival("2026-11-01", "on_time", key="landing/pos/pos_20261101.csv", outcome="validated"),
    arrival("2026-11-02", "early", key="landing/pos/pos_20261102.csv"),
    arrival("2026-11-03", "late", "warn", key="landing/pos/pos_20261103.csv"),
    arrival("2026-11-04", "missing", "critical"),
    arrival("2026-11-05", "pending"),
    # 2026-11-06: nothing due, nothing arrived
    arrival(
        "2026-11-07",
        "unexpected",
        "warn",
        key="landing/pos/pos_20261107.csv",
        outcome="quarantined (data.quality)",
    ),
]


def test_every_arrival_state_gets_its_cell_with_the_file_key_in_its_title() -> None:
    page = Elements(render_page(status(dataset("pos", "critical", EVERY_STATE))))

    cells = {attrs["data-day"]: attrs for attrs in page.with_attr("data-day")}

    assert {day: cell["data-state"] for day, cell in cells.items()} == {
        "2026-11-01": "on_time",
        "2026-11-02": "early",
        "2026-11-03": "late",
        "2026-11-04": "missing",
        "2026-11-05": "pending",
        "2026-11-06": "not_due",
        "2026-11-07": "unexpected",
    }
    assert "file: landing/pos/pos_20261101.csv" in cells["2026-11-01"]["title"]
    assert "outcome: validated" in cells["2026-11-01"]["title"]
    assert "why missing" in cells["2026-11-04"]["title"]
    assert cells["2026-11-06"]["title"] == "2026-11-06: no file due"


def test_the_badge_says_the_level_and_why_and_the_quarantined_file_is_listed() -> None:
    document = status(dataset("pos", "critical", [age("landing", "warn"), *EVERY_STATE]))

    page = Elements(render_page(document))

    (card,) = page.with_attr("data-dataset")
    assert (card["data-dataset"], card["data-level"]) == ("pos", "critical")
    assert "pos is critical" in page.joined()
    (zone,) = page.with_attr("data-zone")
    assert (zone["data-zone"], zone["data-level"], zone["title"]) == (
        "landing",
        "warn",
        "landing is fine",
    )
    assert "2026-11-07: landing/pos/pos_20261107.csv — data.quality" in page.joined()


def test_a_hostile_dataset_name_key_and_message_are_shown_as_text() -> None:
    hostile = "<script>alert(1)</script>"
    results = [
        arrival("2026-11-01", "on_time", key=f"landing/pos/{hostile}.csv"),
        {**age("landing"), "observed": f'"><img src=x onerror=alert(2)>{hostile}'},
    ]
    document = status(
        dataset(hostile, "critical", results, message=hostile),
        alerts=[
            {
                "dataset": hostile,
                "monitor": "arrival",
                "level": "critical",
                "state": "open",
                "summary": hostile,
                "opened_at": hostile,
            }
        ],
    )

    html = render_page(document)
    page = Elements(html)

    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not [tag for tag, _ in page.tags if tag in ("script", "img")]
    (card,) = page.with_attr("data-dataset")
    assert card["data-dataset"] == hostile  # the attribute holds the text, unharmed
    (cell,) = page.with_attr("data-day")
    assert f"landing/pos/{hostile}.csv" in cell["title"]


def test_an_empty_store_and_no_contract_say_so_rather_than_draw_nothing() -> None:
    page = Elements(render_page(status()))

    assert page.with_attr("data-dataset") == []
    assert "No dataset is watched yet" in page.joined()


def test_a_dataset_never_measured_is_unknown_with_no_strip_and_no_sparkline() -> None:
    results = [age("landing", "unknown"), volume("")]
    page = Elements(render_page(status(dataset("sales", "unknown", results))))

    assert page.with_attr("data-day") == []
    assert [tag for tag, _ in page.tags if tag == "svg"] == []
    text = page.joined()
    assert "no schedule" in text
    assert "no partition yet" in text
    (card,) = page.with_attr("data-dataset")
    assert card["data-level"] == "unknown"


def test_absent_shared_keys_leave_their_sections_out() -> None:
    html = render_page({"datasets": [dataset("pos", "ok", [age("landing")])]})
    page = Elements(html)

    assert "Open alerts" not in html  # unknown, not "none"
    assert "Open quarantines" not in html
    assert "Database" not in html
    assert "evaluation failed" not in html
    assert "not evaluated yet" in page.joined()


def test_shared_keys_present_are_drawn_alerts_storage_and_database() -> None:
    document = status(
        dataset("pos", "warn", [age("curated")]),
        alerts=[
            {
                "fingerprint": "f1",
                "dataset": "pos",
                "monitor": "age",
                "level": "warn",
                "state": "acknowledged",
                "summary": "curated is late",
                "opened_at": "2026-11-11",
            },
            {
                "fingerprint": "f2",
                "dataset": "pos",
                "monitor": "volume",
                "level": "warn",
                "state": "resolved",
                "summary": "gone",
                "opened_at": "2026-11-10",
            },
            {
                "fingerprint": "f3",
                "dataset": "retired",
                "monitor": "age",
                "level": "critical",
                "state": "open",
                "summary": "retired feed silent",
                "opened_at": "2026-11-09",
            },
        ],
        storage={
            "pos": {
                "curated": {
                    "objects": 12,
                    "bytes": 2_500_000,
                    "newest_age_seconds": 60,
                    "open_quarantines": {"pgp.no_key": 2},
                }
            }
        },
        database={"size_bytes": 1024, "connections": {"active": 3}, "ignored": [1, 2]},
    )

    page = Elements(render_page(document))
    text = page.joined()

    assert [
        a["data-state"]
        for a in page.with_attr("data-state")
        if "class" in a and a["class"] == "alert"
    ] == ["acknowledged"]
    assert "curated is late" in text
    assert "gone" not in text  # resolved alerts are not open
    assert "retired feed silent" in text  # an alert of no watched dataset is still shown
    assert "12 obj · 2.5 MB" in text
    assert "curated: 2 open — pgp.no_key" in text
    assert "connections.active" in text
    assert "ignored 2 entries" in text


def test_the_worst_dataset_comes_first() -> None:
    document = status(
        dataset("fine", "ok", []), dataset("broken", "critical", []), dataset("odd", "warn", [])
    )

    cards = Elements(render_page(document)).with_attr("data-dataset")

    assert [card["data-dataset"] for card in cards] == ["broken", "odd", "fine"]


def test_a_failed_cycle_is_announced_with_the_time_of_the_results_shown() -> None:
    service = {
        "last_cycle_at": "2026-11-11T12:05:00+00:00",
        "last_success_at": "2026-11-11T12:00:00+00:00",
        "error": "s3: connection refused",
    }

    text = Elements(render_page(status(service=service))).joined()

    assert "The latest evaluation failed: s3: connection refused" in text
    assert "the results of 2026-11-11T12:00:00+00:00" in text


def test_the_sparkline_has_a_point_per_partition_on_a_calendar_and_zero_based_axis() -> None:
    recent = "2026-11-01=300, 2026-11-02=150, 2026-11-03=0, 2026-11-05=300"

    html = render_page(status(dataset("pos", "ok", [volume(recent)])))
    page = Elements(html)

    circles = [attrs for tag, attrs in page.tags if tag == "circle"]
    xs = [float(c["cx"]) for c in circles]
    ys = [float(c["cy"]) for c in circles]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1])
    assert xs[3] - xs[2] == pytest.approx(2 * (xs[1] - xs[0]))  # the 4th left a gap
    assert ys[0] == ys[3] < ys[1] < ys[2]
    assert ys[1] == pytest.approx((ys[0] + ys[2]) / 2)  # 150 is half of 300 above zero
    assert len([tag for tag, _ in page.tags if tag == "polyline"]) == 2  # broken at the gap
    assert "<title>2026-11-02: 150 rows</title>" in html
    assert "2026-11-01 → 2026-11-05 · 0 to 300 rows" in page.joined()


def test_the_served_page_reloads_itself_and_the_static_file_does_not() -> None:
    served = Elements(render_page(status(), refresh_seconds=60))
    static = Elements(render_page(status()))

    assert {"http-equiv": "refresh", "content": "60"} in served.with_attr("http-equiv")
    assert static.with_attr("http-equiv") == []


def test_write_page_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "site" / "status.html"
    target.parent.mkdir()
    target.write_text("old")

    write_page(target, status(dataset("pos", "ok", [])))

    assert 'data-dataset="pos"' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["status.html"]


def test_a_page_that_cannot_be_written_names_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(StatusPageError) as caught:
        write_page(blocker / "status.html", status())

    assert caught.value.path == str(blocker / "status.html")
    assert str(blocker / "status.html") in str(caught.value)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.path, str(copy)) == (caught.value.path, str(caught.value))
