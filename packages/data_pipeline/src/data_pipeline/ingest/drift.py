"""The drift report of a run: its records against the dataset contract they feed.

Written beside the run manifest (``_drift.json``) at every checkpoint and at the end,
and summarised by ``ingest`` and ``ingest status``: fields the records carry that the
contract does not declare (``new_fields``), declared columns no record carried
(``missing_fields``), and declared columns whose values are of another type
(``type_changes``, with the kinds seen and how often). The provenance fields the
platform adds are not the API's and are left out. Drift is a report, not a verdict:
file_processing still judges the chunks by the contract.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from data_pipeline.ingest.profile import FieldProfile, compatible
from etl_core.contracts import Contract
from etl_core.layout import raw_api_drift_key
from etl_core.storage import ObjectStore

__all__ = ["drift_report", "drift_summary", "write_drift"]


def drift_report(profile: FieldProfile, contract: Contract | None) -> dict[str, Any]:
    """The drift of ``profile``'s records from ``contract`` (``None``: fields only)."""
    report: dict[str, Any] = {
        "dataset": contract.dataset if contract is not None else None,
        "records": profile.records,
        "fields_truncated": profile.truncated,
        "new_fields": [],
        "missing_fields": [],
        "type_changes": [],
    }
    declared = {c.name: c for c in contract.columns} if contract is not None else {}
    for name, kinds in profile.fields.items():
        column = declared.get(name)
        if column is None:
            if contract is not None and not contract.schema.open:
                report["new_fields"].append(
                    {"field": name, "records": sum(kinds.values()), "types": dict(kinds)}
                )
            continue
        wrong = {kind: count for kind, count in kinds.items() if not compatible(column.type, kind)}
        if wrong:
            report["type_changes"].append(
                {"field": name, "declared": column.type, "seen": wrong, "all": dict(kinds)}
            )
    if profile.records:
        report["missing_fields"] = [name for name in declared if name not in profile.fields]
    return report


def drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report's field names only (for the state, ``ingest`` and ``ingest status``)."""
    return {
        "new_fields": [f["field"] for f in report["new_fields"]],
        "missing_fields": list(report["missing_fields"]),
        "type_changes": [
            f"{f['field']}: {f['declared']} <- {'/'.join(f['seen'])}"
            for f in report["type_changes"]
        ],
    }


def write_drift(
    store: ObjectStore,
    source: str,
    endpoint: str,
    dt: date,
    run: str,
    report: dict[str, Any],
) -> str:
    """Write the run's drift report beside its manifest; returns the key."""
    key = raw_api_drift_key(source, endpoint, dt, run)
    document = {"source": source, "endpoint": endpoint, "run": run, **report}
    store.write_bytes(key, json.dumps(document, indent=1).encode())
    return key
