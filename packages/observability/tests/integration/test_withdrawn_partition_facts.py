"""A curated partition the pipeline withdrew (its manifest deleted) after the storage index
listed it: the volume monitor reads no rows for that day, and the evaluation goes on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from etl_core.contracts import Column, Contract, Freshness
from etl_core.layout import CURATED, manifest_key
from etl_core.storage import open_store
from observability.monitors import DatasetFacts, LandingFiles, horizon

DAY = date(2026, 11, 2)


class _Index:
    """A storage index listed before the day's curated manifest was deleted."""

    def manifests(self, zone: str, dataset: str) -> Iterable[tuple[date, datetime, str, int]]:
        if zone != CURATED:
            return []
        stored = datetime(2026, 11, 2, 6, tzinfo=UTC)
        return [(DAY, stored, manifest_key(dataset, DAY), 1)]

    def landing(self, dataset: str) -> LandingFiles | None:
        return None


def test_a_curated_day_withdrawn_since_it_was_indexed_has_no_rows(tmp_path: Path) -> None:
    contract = Contract(
        dataset="pos",
        source="pos",
        pattern="pos_{date:%Y%m%d}.csv",
        columns=(Column("id"),),
        freshness=Freshness(warn_after=timedelta(hours=26), critical_after=timedelta(hours=50)),
    )
    now = datetime(2026, 11, 3, 12, tzinfo=UTC)
    with open_store(tmp_path / "lake") as store:
        facts = DatasetFacts(
            store, contract, since=DAY - timedelta(days=7), manifests=_Index(), horizon=horizon(now)
        )
        assert facts.zone(CURATED).days  # the index still has it
        assert facts.rows(DAY) is None
