"""A file-lane worker chains a validated partition's transform naming only the store: the
database it loads into is the pipeline workers' own setting, not the file lane's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from etl_core.config import URL, DatabaseURL
from etl_core.work import WorkUnit
from etl_core.work.celery.origin import DATABASE_HEADER, STORE_HEADER, UnitOrigin, foreign_unit
from etl_core.work.result import UnitResult
from file_processing.cli import _after_unit
from file_processing.outcome import Outcome
from file_processing.settings import FileProcessingSettings


def test_a_chained_transform_names_the_store_and_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import Celery

    sent: list[dict[str, Any]] = []

    def send_task(self: object, name: str, **options: Any) -> object:
        sent.append({"name": name, **options})
        return SimpleNamespace(id="t-1")

    monkeypatch.setattr(Celery, "send_task", send_task)
    settings = FileProcessingSettings(
        broker_url=URL("redis://127.0.0.1:1/0"),
        storage_url=str(tmp_path),
        database_url=DatabaseURL("postgresql://files:pw@files-db/runs"),  # its runs' ledger
    )
    after = _after_unit(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    assert after is not None
    landing = WorkUnit("file_processing", "landing_object", "landing/pos/a.csv")
    validated = Outcome("validated", landing.key, dataset="pos", partition="2026-11-01")
    after(UnitResult(landing, "succeeded", value=validated, attempts=1))

    assert len(sent) == 1
    headers = sent[0]["headers"]
    assert headers == {STORE_HEADER: tmp_path.as_uri()}  # it had etl_database: files-db/runs
    # so a pipeline worker of the same store, on another database or none, runs it
    unit = WorkUnit.from_dict(sent[0]["args"][0])
    for database in ("postgresql://db:5432/etl", None):
        assert foreign_unit(headers, UnitOrigin(tmp_path.as_uri(), database), unit) is None
    assert DATABASE_HEADER not in headers
