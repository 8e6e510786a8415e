"""What happened to one landing object: the value a processor, a scan and a worker's
task all return (``process --json`` prints it), in a module light enough to import
without the processor."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = ["Outcome", "Status"]

Status = Literal["validated", "quarantined", "skipped"]


@dataclass
class Outcome:
    """What happened to one landing object (``process --json`` prints it)."""

    status: Status
    key: str
    dataset: str | None = None
    source: str | None = None
    partition: str | None = None
    outputs: list[str] = field(default_factory=list)
    reason: dict[str, str] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    duplicate_of: str | None = None
    superseded: list[dict[str, str]] = field(default_factory=list)
    """The quarantine records of the same landing key that this validated delivery closed:
    ``key`` (the quarantined object), ``etag`` (its ETag), ``closed_at`` and ``closed_by``:
    ``superseded`` for an earlier delivery's, ``revalidated`` for this same delivery's
    (processed again, ``process --force``, and validated this time)."""
    bytes_in: int = 0
    rows: int = 0
    duration_seconds: float = 0.0
    settling: bool = False
    """``skipped`` because the file (or its checksum sidecar) was modified within
    ``landing_min_age``: it may still be uploading, a later scan takes it. Counted apart
    (``etl_file_processing_objects_total{outcome="settling"}``), since every scan sees it."""

    @property
    def metric_outcome(self) -> str:
        """The ``outcome`` label this object is counted under: its status, or ``settling``."""
        return "settling" if self.settling else self.status

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain data for JSON.

        Its fields already hold plain data, so each list is copied shallowly: ``asdict``
        deep-copied the 8 check summaries of each of 10,000 members, for seconds.
        """
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("outputs", "checks", "members", "superseded"):
            plain[name] = [dict(v) if isinstance(v, dict) else v for v in plain[name]]
        if self.reason is not None:
            plain["reason"] = dict(self.reason)
        return plain
