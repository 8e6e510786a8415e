"""The quality report of one data file: plain, JSON-serialisable dataclasses.

The report is what operators read (``<file>.quality.json`` beside a validated
file, the failed checks of a quarantine record), so every number says what it
counts and every sample carries its line number.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from file_processing.reasons import Reason

__all__ = [
    "CheckResult",
    "ColumnProfile",
    "EncodingIssue",
    "FileColumn",
    "MalformedRow",
    "QualityReport",
    "ReportReason",
    "RowCounts",
    "Sample",
]

Outcome = Literal["pass", "fail"]


@dataclass(frozen=True)
class Sample:
    """A failing row: its line in the file (the header is line 1) and its values as written."""

    line: int
    values: dict[str, str | None]


@dataclass(frozen=True)
class CheckResult:
    """The result of one check over the whole file.

    ``failed_count`` counts rows for row-level checks (for ``unique``: every row
    whose value occurs more than once) and is 0/1 for file-level checks
    (``row_count``, ``columns``, control checks), whose ``detail`` says why.
    """

    name: str
    kind: str
    severity: Literal["warn", "error"]
    passed: bool
    failed_count: int = 0
    column: str | None = None
    detail: str = ""
    samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True)
class MalformedRow:
    """A record the parser could not split into the declared columns."""

    line: int
    byte_offset: int | None
    error: str
    text: str


@dataclass(frozen=True)
class EncodingIssue:
    """Bytes that are not valid in the declared encoding."""

    byte_offset: int
    line: int
    bytes_hex: str
    message: str


@dataclass(frozen=True)
class ColumnProfile:
    """What a column's values look like (over the rows that parsed).

    ``distinct_count`` is a HyperLogLog estimate (``distinct_approximate``) and
    ``top_values`` the most frequent values as written, most frequent first,
    from an approximate top-k sketch (left out for nearly unique columns, where
    it would name arbitrary values); the other figures are exact.
    """

    name: str
    type: str
    null_fraction: float
    distinct_count: int
    min: str | None
    max: str | None
    top_values: list[str]
    distinct_approximate: bool = True


@dataclass(frozen=True)
class FileColumn:
    """One column of the published file: its name, type and where the type comes from.

    ``source`` is ``declared`` (the contract's ``[[columns]]``), ``inferred`` (an
    open schema: the narrowest type every value fits), ``extra`` (a column the
    contract does not declare, kept; type inferred) or ``filled`` (a declared
    optional column the file lacked, published empty).
    """

    name: str
    type: str
    source: Literal["declared", "inferred", "extra", "filled"]


@dataclass(frozen=True)
class RowCounts:
    """Data rows (the header and a trailer record are not data).

    ``total`` counts every data record, ``malformed`` those that did not parse,
    ``rejected`` those split off into the rejected file (or that would have
    been, when the file failed as a whole), ``valid`` the rest.
    """

    total: int = 0
    malformed: int = 0
    rejected: int = 0
    valid: int = 0


@dataclass(frozen=True)
class ReportReason:
    """Why the file failed: one reason code and a sentence."""

    code: Reason
    message: str


@dataclass
class QualityReport:
    """Everything the quality analysis found about one data file.

    ``outcome`` is ``pass`` when no ``error``-severity check failed, or when the
    rows failing them were few enough to split off (``split`` is then true).
    ``profile_approximate`` names the profile's statistics that are estimates (computed
    in the checking pass, never a pass of their own), ``profile_omitted`` those the
    settings left out.
    """

    dataset: str
    file: str
    outcome: Outcome = "pass"
    reason: ReportReason | None = None
    format: str = "csv"
    encoding: str = "utf-8"
    size_bytes: int = 0
    rows: RowCounts = field(default_factory=RowCounts)
    checks: list[CheckResult] = field(default_factory=list)
    malformed: list[MalformedRow] = field(default_factory=list)
    encoding_errors: list[EncodingIssue] = field(default_factory=list)
    encoding_error_count: int = 0
    profile: list[ColumnProfile] = field(default_factory=list)
    profile_approximate: list[str] = field(default_factory=list)
    profile_omitted: list[str] = field(default_factory=list)
    columns: list[FileColumn] = field(default_factory=list)
    split: bool = False
    reject_limit: str = "0 rows"
    checksum: str | None = None
    engine: str = ""
    duration_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether the file (or its valid rows, after a split) may go on."""
        return self.outcome == "pass"

    @property
    def failed_checks(self) -> list[CheckResult]:
        """Checks that failed, any severity."""
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data for JSON."""
        data = asdict(self)
        if self.reason is not None:
            data["reason"] = {"code": self.reason.code.value, "message": self.reason.message}
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)
