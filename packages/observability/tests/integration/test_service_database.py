"""The status service's database cycle: its metrics and status key, and a database that fails."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from etl_database_schema import DatabaseStats, TableStats
from observability.database_metrics import DatabaseReport
from observability.errors import DatabaseUnavailableError
from observability.service import StatusService


class Database:
    """A database collector the test breaks at will (the real one needs Django set up)."""

    def __init__(self) -> None:
        self.broken = False
        self.calls: list[datetime] = []

    def __call__(self, now: datetime) -> DatabaseReport:
        self.calls.append(now)
        if self.broken:
            raise DatabaseUnavailableError("database postgresql://etl:***@db/etl is unavailable")
        stats = DatabaseStats("sqlite", 8192, (TableStats("etl_pipeline_run", 4, None),))
        return DatabaseReport(
            now, timedelta(hours=24), {"runs_running": 0}, stats, {}, {}, (), (), ()
        )


def _service(lake: Any, clock: Any, contract: Any, database: Database) -> StatusService:
    return StatusService(
        [contract], lake.store, clock, interval=timedelta(minutes=1), database=database
    )


def test_each_cycle_collects_the_database_into_metrics_and_status(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    database = Database()
    service = _service(lake, clock, weekday_contract(expected=None), database)

    snapshot = service.refresh()

    status = json.loads(snapshot.status)
    metrics = snapshot.metrics.decode()
    assert database.calls == [clock.now()]
    assert status["database"]["vendor"] == "sqlite"
    assert status["database"]["tables"][0]["rows"] == 4
    assert "etl_observability_database_up 1" in metrics
    assert 'etl_observability_table_rows{table="etl_pipeline_run"} 4' in metrics
    assert 'etl_observability_freshness_level{dataset="pos",zone="landing"} -1' in metrics
    assert service.ready() == (True, "ok")


def test_an_unreachable_database_fails_readiness_but_keeps_the_freshness_results(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    database = Database()
    service = _service(lake, clock, weekday_contract(expected=None), database)
    clock.set(berlin(21, 12))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 11))
    database.broken = True

    snapshot = service.refresh()

    status = json.loads(snapshot.status)
    metrics = snapshot.metrics.decode()
    assert status["datasets"][0]["level"] == "ok"
    assert status["database"] == {"error": "database postgresql://etl:***@db/etl is unavailable"}
    assert "etl_observability_database_up 0" in metrics
    assert "etl_observability_table_rows" not in metrics
    ready, why = service.ready()
    assert not ready
    assert "database metrics not collected" in why

    database.broken = False
    clock.advance(timedelta(minutes=1))
    service.refresh()
    assert service.ready() == (True, "ok")


def test_without_a_database_the_status_has_no_database_key(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    service = StatusService([weekday_contract()], lake.store, clock, interval=timedelta(minutes=1))

    snapshot = service.refresh()

    assert "database" not in json.loads(snapshot.status)
    assert "etl_observability_database_up" not in snapshot.metrics.decode()
