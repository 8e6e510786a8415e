"""Fixtures for the observability tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from etl_core.artifacts import CuratedManifest, QuarantineRecord
from etl_core.contracts import Column, Contract, Freshness, Holidays
from etl_core.layout import delivery_manifest_key, landing_key, manifest_key, quarantine_key
from etl_core.storage import ObjectStore, open_store
from etl_core.testing.brokers import celery_broker
from etl_core.testing.deliveries import publish_delivery
from etl_core.testing.fixtures import (
    postgres_server_url,
    postgres_url,
    refused_login_urls,
    s3_bucket,
    s3_endpoint,
)
from etl_core.testing.scripts import run_script

# shared fixtures, re-exported for pytest
__all__ = [
    "celery_broker",
    "postgres_server_url",
    "postgres_url",
    "refused_login_urls",
    "s3_bucket",
    "s3_endpoint",
]


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``etl-observability`` in a clean working directory with JSON logs."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_script("etl-observability", *args, cwd=tmp_path, env=env)

    return run


AGED_CONTRACT = """
dataset = "{name}"
source = "{name}"
pattern = "{name}_{{date:%Y%m%d}}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "1h"
critical_after = "3h"
"""
"""A feed judged by age alone (warn after 1 h, critical after 3 h), ``{name}`` its name."""


@pytest.fixture
def aged_feeds(tmp_path: Path) -> Callable[..., list[str]]:
    """``aged_feeds("stock", "sales")``: an :data:`AGED_CONTRACT` per name under
    ``tmp_path/config`` and a store at ``tmp_path/lake``; the global options naming both."""

    def configure(*names: str) -> list[str]:
        datasets = tmp_path / "config" / "datasets"
        datasets.mkdir(parents=True, exist_ok=True)
        for name in names:
            (datasets / f"{name}.toml").write_text(AGED_CONTRACT.format(name=name))
        (tmp_path / "lake").mkdir(exist_ok=True)
        return ["--config-dir", str(tmp_path / "config"), "--storage", str(tmp_path / "lake")]

    return configure


SCHEMA_CLI = str(Path(sys.executable).parent / "etl-schema")


@pytest.fixture
def migrate() -> Callable[[str], None]:
    """Bring a database to the current schema with the operator's command."""

    def run(database_url: str) -> None:
        subprocess.run(
            [SCHEMA_CLI, "migrate"],
            env={**os.environ, "ETL_DATABASE_URL": "", "DATABASE_URL": database_url},
            check=True,
            capture_output=True,
            timeout=300,
        )

    return run


class FakeClock:
    """A clock the test sets and moves (monitors take the time from it only)."""

    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class Lake:
    """A local store the tests fill with objects stored at chosen times."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store: ObjectStore = open_store(str(root))

    def _stamp(self, key: str, at: datetime) -> None:
        stamp = at.timestamp()
        os.utime(self.root / key, (stamp, stamp))

    def drop(self, source: str, name: str, at: datetime) -> str:
        """A vendor file landing at ``at``."""
        key = landing_key(source, name)
        self.store.write_bytes(key, b"store_id\n1\n")
        self._stamp(key, at)
        return key

    def validate(self, dataset: str, day: date, rows: int, at: datetime, landing: str) -> None:
        """A published validated delivery of ``rows`` rows from ``landing``."""
        publish_delivery(
            self.store, dataset, day, {f"{day:%Y%m%d}.csv": b"x"}, landing=landing, rows=rows
        )
        self._stamp(delivery_manifest_key(dataset, day, landing), at)

    def quarantine(self, dataset: str, day: date, landing: str, reason: str) -> None:
        """The quarantine record of ``landing``."""
        key = quarantine_key(dataset, day, landing.rpartition("/")[2])
        record = QuarantineRecord(
            key=key,
            dataset=dataset,
            partition=day.isoformat(),
            reason=reason,
            message="bad",
            source_key=landing,
            source_etag="e",
            source_size=1,
            run_id="r",
            quarantined_at="2026-12-01T00:00:00+00:00",
        )
        self.store.write_bytes(record.record_key, record.to_json())

    def curate(self, dataset: str, day: date, rows: int, at: datetime) -> None:
        """A published curated partition of ``rows`` rows."""
        key = manifest_key(dataset, day)
        manifest = CuratedManifest(
            dataset=dataset,
            dt=day.isoformat(),
            generation="g",
            started_at=at.isoformat(),
            published_at=at.isoformat(),
            files=(),
            rows=rows,
            bytes=0,
            inputs={},
        )
        self.store.write_bytes(key, manifest.to_json())
        self._stamp(key, at)

    def keys(self) -> list[tuple[str, str, datetime]]:
        return [(i.key, i.etag, i.last_modified) for i in self.store.list("")]


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    """An empty local store."""
    root = tmp_path / "lake"
    root.mkdir()
    lake = Lake(root)
    yield lake
    lake.store.close()


def _weekday_contract(**freshness: object) -> Contract:
    """POS files due at 06:00 Berlin on weekdays, 2h grace, Christmas off, 26h/50h ages."""
    settings: dict[str, object] = {
        "warn_after": timedelta(hours=26),
        "critical_after": timedelta(hours=50),
        "expected": "0 6 * * 1-5",
        "grace": timedelta(hours=2),
        "timezone": "Europe/Berlin",
        "holidays": Holidays(dates=frozenset({date(2026, 12, 25)})),
    }
    settings.update(freshness)
    return Contract(
        dataset="pos",
        source="pos",
        pattern="pos_{date:%Y%m%d}.csv",
        columns=(Column("store_id"),),
        freshness=Freshness(**settings),
    )


def _berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of December 2026 given in Berlin time (UTC+1 in winter), as UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


@pytest.fixture
def weekday_contract() -> Callable[..., Contract]:
    """Build the weekday POS contract, with ``[freshness]`` keys overridden."""
    return _weekday_contract


@pytest.fixture
def berlin() -> Callable[..., datetime]:
    """``berlin(day, hour, minute=0)``: a December 2026 Berlin time, as UTC."""
    return _berlin


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock, set by the test."""
    return FakeClock(datetime(2026, 12, 1, tzinfo=UTC))


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that refuses its first ``failures`` requests with 500.

    ``received`` holds every request (path, JSON body, status answered), in order.
    """

    def __init__(self, failures: int = 0, status: int = 500, retry_after: str = "") -> None:
        import http.server
        import json
        import threading

        self.failures = failures
        self.status = status
        self.received: list[tuple[str, object, int]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.arrived:
                    refused = len(receiver.received) < receiver.failures
                    answer = receiver.status if refused else 200
                    receiver.received.append((self.path, json.loads(body), answer))
                    receiver.arrived.notify_all()
                self.send_response(answer)
                if refused and retry_after:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test asserts on what was received

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted(self) -> list[object]:
        """The bodies answered with 200."""
        with self.arrived:
            return [body for _, body, status in self.received if status == 200]

    def wait_for(self, count: int, seconds: float = 30.0) -> list[tuple[str, object, int]]:
        """Wait (bounded) until ``count`` requests arrived; all received so far."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout=seconds)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """``webhook_receiver(failures=0, status=500, retry_after="")``: a receiver (answering its
    refusals with that ``Retry-After``, if any), closed after the test."""
    started: list[WebhookReceiver] = []

    def start(failures: int = 0, status: int = 500, retry_after: str = "") -> WebhookReceiver:
        started.append(WebhookReceiver(failures, status, retry_after))
        return started[-1]

    yield start
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def receiver(webhook_receiver: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    """A webhook receiver that fails its first request with 500, then accepts."""
    return webhook_receiver(failures=1)
