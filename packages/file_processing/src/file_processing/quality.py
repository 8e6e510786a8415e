"""Streaming data-quality analysis of one plain data file against its contract.

:func:`analyze_file` returns a :class:`~file_processing.report.QualityReport`;
:func:`validate_file` also splits rows when the contract allows it and says
which file goes on (the valid rows) and where the rejected rows went.

How it runs, in bounded memory whatever the file size:

1. a Python pre-pass (:mod:`.prescan`) validates the encoding chunk by chunk,
   hashes the bytes for a checksum sidecar, finds the header and trailer and
   counts the records of a CSV file its own way (:mod:`.records`), refusing an
   over-long field or record (``data.too_large``) or too many columns
   (``data.too_wide``) before the engine reads it;
2. DuckDB reads the file once with every column as text (for a large CSV the
   query starts while the pre-pass runs, see :mod:`.ahead`), storing the records
   it cannot split (``store_rejects``: line, byte offset, message), and
   computes every check count, the column profile and the list of each
   ``unique`` column's key hashes in one aggregate query; as many distinct
   hashes as values proves the column unique;
3. only when something failed: a ``unique`` check whose hash repeats groups its
   column exactly, one more pass collects the failing rows (with their line
   numbers) for samples and the split, and the split writes both files with
   ``COPY``.

DuckDB runs with a memory limit and spills to a temporary directory beyond it;
it may touch only the input, the output and that directory. Nothing file-sized
is ever fetched into Python: only aggregates and ``LIMIT``-ed samples. The
engine must account for every record the pre-pass counted (valid + rejected +
malformed = records in the file), or the file fails with ``data.parse_error``;
an engine that runs out of memory raises :class:`QualityEngineError`, never a
verdict on the data.

DuckDB was chosen by measurement (1M retail rows, 92 MB, two cores): the same
checks and profile took 0.9 s in one DuckDB query against 1.0 s with Polars'
streaming engine, and DuckDB alone reports malformed records with line numbers.
"""

from __future__ import annotations

import copy
import csv
import itertools
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl_core.contracts import Check, Contract
from etl_core.errors import first_line
from etl_core.layout import REJECTED_SUFFIX
from etl_core.scratch import make_scratch
from etl_core.units import ByteSize
from etl_core.work.cores import unit_threads
from file_processing.ahead import AheadQuery, BackgroundQuery
from file_processing.checks import (
    NUL_RULE,
    Rule,
    ident,
    key_hash,
    raw_name,
    row_rules,
    sql_text,
    typed_expr,
    unique_index,
    unique_table,
)
from file_processing.control import checksum_result, trailer_result
from file_processing.engine import QualityEngine
from file_processing.errors import QualityEngineError
from file_processing.prescan import CHUNK_SIZE, Prescan, prescan, utf8_compatible
from file_processing.profile import (
    present_count,
    profile_columns,
    profile_exprs,
    profile_kinds,
    top_value_exprs,
    with_top_values,
)
from file_processing.reasons import Reason
from file_processing.records import (
    SAMPLE_PIECES,
    LineFeeds,
    Oversize,
    RecordCount,
    RecordLimits,
    count_lines,
    count_records,
)
from file_processing.report import (
    CheckResult,
    FileColumn,
    MalformedRow,
    QualityReport,
    ReportReason,
    RowCounts,
    Sample,
)
from file_processing.schema_infer import inference_exprs, inferred_types
from file_processing.schema_policy import ColumnLayout, layout_columns

if TYPE_CHECKING:  # the JSON reader: imported by the analysis of a JSON file (issue 16, start-up)
    from file_processing.json_records import JsonScan

__all__ = ["QualityResult", "QualitySettings", "analyze_file", "validate_batch", "validate_file"]

logger = logging.getLogger(__name__)

_MAX_TEXT = 500  # characters of a malformed record kept in a sample
_REJECTS, _REJECT_SCANS = "__rejects", "__reject_scans"
# The checking pass's aggregates, with the unique checks' key hashes: a table of the
# database (not of the connection), so that two connections count the hashes side by side.
_SCAN = "__scan"
_SCAN_IDS = itertools.count()  # one table name per analysis of the process
_KEY_HASH_BYTES = 8  # memory per row of a unique check's list of key hashes
_KEY_PARTS = 4  # lists of key hashes per unique check, by hash: counted side by side
_BUFFERS_PER_LINE = 2  # the CSV reader's buffer, in longest lines (DuckDB's default is 16)
_PARQUET_MAGIC = b"PAR1"
_JSON_FORMATS = ("json", "jsonl")
_JSON_ARRAY = re.compile(rb"\[[ \t\r\n]*[{\]]")
_AHEAD_BYTES = 32 << 20  # files from this size get their checking query started ahead
_AHEAD_HEAD = 1 << 18  # bytes read for the header and the average record length (~3k rows)
_LINE_SIZE_MARGIN = 1024  # the engine's line size counts the line break; ours does not
# Failed checks, by kind, and the reason they give the file: the first group that failed.
_REASONS: tuple[tuple[frozenset[str], Reason], ...] = (
    (frozenset({"size"}), Reason.DATA_TOO_LARGE),
    (frozenset({"width"}), Reason.DATA_TOO_WIDE),
    (frozenset({"columns"}), Reason.DATA_SCHEMA),
    (frozenset({"parse", "records", "malformed"}), Reason.DATA_PARSE_ERROR),
    (frozenset({"number_range"}), Reason.DATA_NUMBER_RANGE),
    (frozenset({"type"}), Reason.DATA_TYPE),
)


@dataclass(frozen=True)
class QualitySettings:
    """Engine limits and report sizes; loadable with :func:`etl_core.config.load_settings`.

    Attributes:
        memory_limit: DuckDB's memory limit; beyond it, work spills to ``work_dir``.
        threads: DuckDB worker threads (0: the unit's share of the cores,
            :func:`~etl_core.work.cores.unit_threads`).
        sample_rows: Failing rows kept per check.
        malformed_samples: Malformed records kept.
        encoding_samples: Encoding errors kept with their offsets.
        top_values: Most frequent values kept per column (0: none, and no top-k sketch
            in the checking pass).
        work_dir: Where temporary files go (default: the system's temp directory).
        max_field_bytes: Longest CSV field (UTF-8 bytes); a contract may set less.
        max_record_bytes: Longest CSV record or JSON record (UTF-8 bytes); a contract
            may set less.
        max_columns: Most fields in a CSV record; the engine needs memory per column
            (about 0.5 MiB each), so wider files are refused before it reads them.
        json_max_depth: Nesting of arrays and objects within one JSON record.
    """

    memory_limit: ByteSize = ByteSize("256MiB")
    threads: int = 0
    sample_rows: int = 5
    malformed_samples: int = 20
    encoding_samples: int = 20
    top_values: int = 5
    work_dir: Path | None = None
    max_field_bytes: ByteSize = ByteSize("10MiB")
    max_record_bytes: ByteSize = ByteSize("16MiB")
    max_columns: int = 500
    json_max_depth: int = 64


@dataclass(frozen=True)
class QualityResult:
    """What :func:`validate_file` decided.

    Attributes:
        report: The quality report.
        valid_path: The file to publish: the input itself, a clean copy (UTF-8,
            without the trailer record) or the valid rows after a split; ``None``
            when the file failed.
        rejected_path: ``<file>.rejected.csv`` after a split, else ``None``.
    """

    report: QualityReport
    valid_path: Path | None
    rejected_path: Path | None


def analyze_file(
    path: str | Path,
    contract: Contract,
    *,
    checksum: str | None = None,
    settings: QualitySettings | None = None,
    name: str | None = None,
    engine: QualityEngine | None = None,
) -> QualityReport:
    """Check a plain data file against ``contract`` and report, without writing outputs.

    Args:
        path: The unpacked, decrypted data file.
        contract: Its dataset contract.
        checksum: The digest from the delivery's sidecar, when the contract asks for
            one and the sidecar covers these bytes (an unpacked delivery). Verify
            packed deliveries with :func:`file_processing.control.verify_sidecar`.
        settings: Engine limits; defaults when ``None``.
        name: The file's name in the report and logs (an archive member's path);
            the file name of ``path`` when ``None``.
        engine: A database shared by the files of one delivery (``path`` inside its
            root); a database of the file's own when ``None``.
    """
    with _Analysis(
        Path(path), contract, checksum, settings or QualitySettings(), name, engine
    ) as analysis:
        return analysis.run(out_dir=None).report


def validate_file(
    path: str | Path,
    contract: Contract,
    *,
    out_dir: str | Path,
    checksum: str | None = None,
    settings: QualitySettings | None = None,
    name: str | None = None,
    engine: QualityEngine | None = None,
) -> QualityResult:
    """Check a data file and, when rows fail within the contract's limit, split them off.

    The valid rows go to ``<out_dir>/<file name>`` and the rejected rows to
    ``<out_dir>/<file name>.rejected.csv`` (original columns as written, then
    ``_line``, ``_failed_check`` and, for records that did not parse, ``_raw``).

    Raises:
        ValueError: ``out_dir`` is the input's own directory (the output would
            overwrite the input).
    """
    source, target = Path(path), Path(out_dir)
    if source.parent.resolve() == target.resolve():
        raise ValueError("out_dir must differ from the input file's directory")
    target.mkdir(parents=True, exist_ok=True)
    with _Analysis(
        source, contract, checksum, settings or QualitySettings(), name, engine
    ) as analysis:
        return analysis.run(out_dir=target)


def validate_batch(
    paths: Sequence[Path],
    contract: Contract,
    *,
    out_dirs: Sequence[Path],
    names: Sequence[str],
    engine: QualityEngine,
    settings: QualitySettings | None = None,
) -> list[QualityResult]:
    """:func:`validate_file` for many small files of one contract (a delivery's members),
    with one engine query for all of them instead of one per file.

    Each file gets its own pre-pass; the plain CSV files among them are then counted,
    checked and profiled together in one grouped query (a file that does not parse,
    fails a row rule, repeats a unique value or holds a record the engine did not
    account for is analysed again on its own, as :func:`validate_file` would). Results
    are the same as file by file, in the order of ``paths``; the files must lie inside
    the ``engine``'s root.
    """
    settings = settings or QualitySettings()
    with ExitStack() as stack:
        analyses = [
            stack.enter_context(_Analysis(path, contract, None, settings, name, engine))
            for path, name in zip(paths, names, strict=True)
        ]
        results: list[QualityResult | None] = []
        prepared: dict[int, Prescan] = {}
        for index, (analysis, out_dir) in enumerate(zip(analyses, out_dirs, strict=True)):
            # made only when written to; a file alone gets its checking query started ahead
            outcome = analysis.prepare(out_dir, ahead=len(analyses) == 1)
            results.append(outcome if isinstance(outcome, QualityResult) else None)
            if not isinstance(outcome, QualityResult):
                prepared[index] = outcome
        batched = {i: scan for i, scan in prepared.items() if analyses[i].batchable(scan)}
        if len(batched) > 1:
            results = _batched(analyses, batched, results)
        for index, scan in prepared.items():
            if results[index] is None:
                results[index] = analyses[index].engine_pass(scan, out_dirs[index])
    return [result for result in results if result is not None]


def _batched(
    analyses: Sequence[_Analysis],
    scans: dict[int, Prescan],
    results: list[QualityResult | None],
) -> list[QualityResult | None]:
    """``results`` with the clean files of ``scans`` decided by one grouped query."""
    files = {str(analyses[i].path): i for i in scans}
    rows, rejected = _batch_query([analyses[i] for i in scans])
    for row in rows:
        index = files.get(str(row[0]))
        if index is None or row[0] in rejected:
            continue
        analysis = analyses[index]
        width = len(analysis.aggregate_exprs())
        results[index] = analysis.finish_batched(scans[index], row[1 : 1 + width], row[1 + width :])
    return results


def _batch_query(analyses: Sequence[_Analysis]) -> tuple[list[tuple[Any, ...]], set[str]]:
    """Every file's aggregates (``filename`` first, then whether each unique column is
    distinct) and the files holding a record that did not parse; nothing when the batch
    cannot be read as a whole (each file is then analysed on its own)."""
    import duckdb  # the engine; imported with the first analysis

    first = analyses[0]
    assert first.engine is not None  # a batch shares its delivery's database
    distinct = [
        f"count({ident(check.column or '')}) = count(DISTINCT {ident(check.column or '')})"
        for _, check in unique_index(first.contract)
    ]
    exprs = ", ".join(first.aggregate_exprs() + distinct)
    relation = first._typed([a.path for a in analyses], store_rejects=True)
    connection = first.engine.connect()
    try:
        rows = connection.execute(
            f"SELECT filename, {exprs} FROM {relation} AS t GROUP BY filename"
        ).fetchall()
        rejected = connection.execute(
            f"SELECT DISTINCT s.file_path FROM {_REJECTS} AS r "
            f"JOIN {_REJECT_SCANS} AS s USING (scan_id, file_id)"
        ).fetchall()
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.InterruptException):
            raise
        logger.debug("batch of %d files analysed one by one: %s", len(analyses), exc)
        return [], set()
    finally:
        connection.close()
    return rows, {str(path) for (path,) in rejected}


# ------------------------------------------------------------------ analysis


@dataclass
class _Counts:
    """Results of the aggregate pass."""

    rows: int = 0
    malformed: int = 0
    unreadable: bool = False
    counted: int | None = None  # data records counted by the pre-pass
    failures: dict[str, int] = field(default_factory=dict)  # rule name -> failing rows


class _Analysis:
    """One file's analysis: pre-pass, DuckDB session, report and outputs."""

    def __init__(
        self,
        path: Path,
        contract: Contract,
        checksum: str | None,
        settings: QualitySettings,
        name: str | None = None,
        engine: QualityEngine | None = None,
    ) -> None:
        self.path = path
        self.engine = engine
        self.declared = contract
        self.contract = contract  # the declared columns, then the file's extra ones
        self.checksum = checksum
        self.settings = settings
        self.started = time.perf_counter()
        self.format = _resolve_format(path, contract.format)
        self.report = QualityReport(
            dataset=contract.dataset,
            file=name or path.name,
            format=self.format,
            encoding="binary" if self.format == "parquet" else contract.parse.encoding,
            reject_limit=str(contract.max_rejected_fraction),
        )
        self.checks: list[CheckResult] = []
        self.rules = row_rules(contract)
        self.layout = ColumnLayout(contract.columns, tuple(range(len(contract.columns))))
        self.order: list[int] = list(self.layout.order)  # file position -> column
        self.json: JsonScan | None = None
        self._failed_rules: list[Rule] = []
        self._settled: dict[str, int] = {}  # rule -> failing rows, known without the engine
        self._sample: list[str] = []  # records of the pre-pass's sample, for the top values
        self._sampled_top = False  # top values from the sample, not from the checking pass
        self._breaks: set[str] = set()
        self._scratch_dir: Path | None = None  # made on first use: most members never need it
        self._connection: Any = None
        self._ahead: AheadQuery | None = None  # the checking query, started ahead
        self._scan_table = f"{_SCAN}_{next(_SCAN_IDS)}"
        self._scan_made = False  # the checking pass was started with its key hashes

    @property
    def _scratch(self) -> Path:
        """The analysis's private scratch directory, made when first needed.

        With a shared engine it lies inside the engine's scratch (removed with it, owned
        by the delivery's work directory), so it needs no owner tag nor sweep of its own.
        """
        if self._scratch_dir is None:
            if self.engine is not None:
                self._scratch_dir = Path(
                    tempfile.mkdtemp(prefix="quality-", dir=self.engine.scratch)
                )
            else:
                self._scratch_dir = make_scratch(self.settings.work_dir, "quality")
        return self._scratch_dir

    def __enter__(self) -> _Analysis:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
        if self._connection is not None:
            self._forget_scan()
            self._connection.close()
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)

    # ------------------------------------------------------------ the steps

    def run(self, out_dir: Path | None) -> QualityResult:
        prepared = self.prepare(out_dir, ahead=True)
        if isinstance(prepared, QualityResult):
            return prepared
        return self.engine_pass(prepared, out_dir)

    def prepare(self, out_dir: Path | None, *, ahead: bool = False) -> Prescan | QualityResult:
        """Everything before the engine reads the file: the pre-pass, the size limits and
        the columns; the result when the file is decided already, else the pre-pass.
        With ``ahead``, the engine's checking query of a large CSV starts meanwhile."""
        if ahead:
            self._start_ahead(out_dir)
        try:
            prepared = self._prepare(out_dir)
        except BaseException:
            self._drop_ahead()
            raise
        if isinstance(prepared, QualityResult):
            self._drop_ahead()
        return prepared

    def _prepare(self, out_dir: Path | None) -> Prescan | QualityResult:
        scan = self._prescan(out_dir)
        self.report.size_bytes = scan.size
        self.report.checksum = scan.digest
        if scan.encoding_error_count:
            return self._encoding_failure(scan)
        if self.contract.control.checksum:
            self.checks.append(
                checksum_result(self.contract.control.checksum, scan.digest, self.checksum)
            )
        if scan.records is not None and scan.records.oversize is not None:
            self.checks.append(_oversize_result(scan.records.oversize))
            return self._finish(RowCounts(), out_dir, scan, split=False)
        if scan.records is not None:
            self._breaks = scan.records.line_breaks
        if self.format in _JSON_FORMATS:
            self.json = self._read_json(scan)
            if self.json.fatal is not None:
                return self._json_failure(scan, self.json)
        if not self._columns_present(scan):
            return self._finish(RowCounts(), out_dir, scan, split=False)
        return scan

    def engine_pass(self, scan: Prescan, out_dir: Path | None) -> QualityResult:
        """The engine's part of the analysis of a prepared file; an engine error is raised
        as :class:`QualityEngineError`."""
        try:
            return self._engine_pass(scan, out_dir)
        except Exception as exc:
            if _is_duckdb_error(exc):
                raise QualityEngineError(self.report.file, first_line(exc)) from exc
            raise

    def batchable(self, scan: Prescan) -> bool:
        """Whether the file may share one batched query with others of its contract: a
        plain UTF-8 CSV with a counted body, read as is, in the declared columns' order."""
        declared = len(self.declared.columns)
        return (
            self.format == "csv"
            and self.contract.parse.header
            and scan.records is not None
            and scan.data_path == self.path
            and not self.declared.schema.open
            and self.layout.order == tuple(range(declared))
            and len(self.contract.columns) == declared
            and not self.layout.filled
        )

    def finish_batched(
        self, scan: Prescan, values: Sequence[Any], distinct: Sequence[bool]
    ) -> QualityResult | None:
        """Finish a clean file from its row of the batched aggregate (:meth:`aggregate_exprs`
        order) and whether each unique column held distinct values; ``None`` when the file
        is not clean (a failing row, a duplicate, a record not accounted for), so that it
        is analysed on its own."""
        counts = self._counts(values)
        counts.counted = scan.records.records if scan.records is not None else None
        if any(counts.failures.values()) or not all(distinct) or counts.rows != counts.counted:
            return None
        self._records_accounted(counts)
        for _, check in unique_index(self.contract):
            counts.failures[check.label] = 0
        rejected = self._row_checks(Path(), counts)
        self._file_checks(scan, counts)
        return self._decide(counts, rejected, None, scan)

    def _engine_pass(self, scan: Prescan, out_dir: Path | None) -> QualityResult:
        """Everything DuckDB does: counts, checks, samples, the decision and the split."""
        data = self._engine_path(scan)
        self._settled = self._settled_rules(scan)
        self._sample = scan.records.sample if scan.records is not None else []
        self._sampled_top = self.settings.top_values > 0 and bool(self._sample)
        hashed = self._hashed_uniques(scan)
        self._keep_ahead(data, hashed)
        if self._connection is None:
            self._connect(data, out_dir)
        if self.json is not None:
            self._load_json_rejects(self.json)
        counts = self._aggregate(data, hashed)
        self._sample = []  # its top values are in the profile now
        if scan.records is not None:
            scan.records.sample = []
        if counts.unreadable:
            return self._finish(RowCounts(), out_dir, scan, split=False)
        if scan.records is not None:
            counts.counted = scan.records.records
            if not self._records_accounted(counts):
                rows = RowCounts(total=counts.counted, malformed=counts.malformed)
                return self._finish(rows, out_dir, scan, split=False)
        self._unique(data, counts)
        rejected = self._row_checks(data, counts)
        self._file_checks(scan, counts)
        return self._decide(counts, rejected, out_dir, scan)

    def _settled_rules(self, scan: Prescan) -> dict[str, int]:
        """Rules the pre-pass settles: the NUL screen of a CSV whose text holds no NUL
        (a CSV field has no escape that could make one), a scan of every text value saved."""
        if self.format == "csv" and scan.nul is False:
            return {rule.name: 0 for rule in self.rules if rule.kind == NUL_RULE}
        return {}

    def _engine_path(self, scan: Prescan) -> Path:
        """The file DuckDB reads: JSON Lines of the good records for JSON, else the data."""
        return self.json.clean_path if self.json is not None else scan.data_path

    def _read_json(self, scan: Prescan) -> JsonScan:
        from file_processing.json_records import JsonLimits, scan_json

        copied = scan.data_path != self.path  # prescan wrote UTF-8
        return scan_json(
            scan.data_path,
            array=self.format == "json",
            encoding="utf-8" if copied else self.declared.parse.encoding,
            work_dir=self._scratch,
            limits=JsonLimits(
                max_record_bytes=self.limits.max_record_bytes,
                max_depth=self.settings.json_max_depth,
                max_keys=self.settings.max_columns,
            ),
            max_samples=self.settings.malformed_samples,
        )

    def _json_failure(self, scan: Prescan, found: JsonScan) -> QualityResult:
        """A JSON file that cannot be read past some point fails with that point's reason."""
        assert found.fatal is not None
        self.checks.append(
            CheckResult("readable", "json", "error", False, 1, detail=found.fatal.message)
        )
        self.report.reason = ReportReason(found.fatal.reason, found.fatal.message)
        self._remove_copy(scan)
        return self._result(outcome="fail", valid=None, rejected=None)

    def _load_json_rejects(self, found: JsonScan) -> None:
        """The malformed JSON records, shaped like DuckDB's CSV rejects table."""
        path = sql_text(str(found.rejects_path))
        self._sql(
            f"CREATE TEMP TABLE {_REJECTS} AS SELECT 0 AS scan_id, record AS line, "
            "CAST(NULL AS BIGINT) AS line_byte_position, message AS error_message, "
            "0 AS column_idx, text AS csv_line "
            f"FROM read_csv({path}, header = true, auto_detect = false, quote = '\"', "
            "escape = '\"', columns = {'record': 'BIGINT', 'reason': 'VARCHAR', "
            "'message': 'VARCHAR', 'text': 'VARCHAR'})"
        )

    def _prescan(self, out_dir: Path | None) -> Prescan:
        text = self.format != "parquet"
        options = self.contract.parse
        trailer = text and self.contract.control.trailer_pattern is not None
        needs_copy = text and (trailer or not utf8_compatible(options.encoding))
        copy_dir = out_dir if out_dir is not None else self._scratch
        if needs_copy:
            copy_dir.mkdir(parents=True, exist_ok=True)
        limits = self.limits
        columns = len(self.contract.columns)
        every = self._sample_every()

        def counter(texts: Iterable[str], feeds: LineFeeds) -> RecordCount:
            if self.format == "jsonl":
                return count_lines(texts, limits=limits)
            return count_records(
                texts, options, columns=columns, limits=limits, sample_every=every, line_feeds=feeds
            )

        return prescan(
            self.path,
            encoding=options.encoding if text else None,
            hash_algorithm=self.contract.control.checksum,
            find_trailer=trailer,
            copy_to=copy_dir / self.path.name if needs_copy else None,
            max_samples=self.settings.encoding_samples,
            count_records=counter if self.format in ("csv", "jsonl") else None,
        )

    def _sample_every(self) -> int:
        """For a large CSV with top values to find, keep every how many chunks of records
        as the sample they are found in (about :data:`SAMPLE_PIECES` over the file, a
        few MiB); 0 for the others, whose checking pass finds them (no sample)."""
        size = self.path.stat().st_size
        if self.format != "csv" or self.settings.top_values <= 0 or size < _AHEAD_BYTES:
            return 0
        return max(1, size // (CHUNK_SIZE * SAMPLE_PIECES))

    @property
    def limits(self) -> RecordLimits:
        """The record limits: the settings', lowered by the contract's ``[parse]``."""
        options, settings = self.contract.parse, self.settings
        return RecordLimits(
            max_field_bytes=min(int(settings.max_field_bytes), options.max_field_bytes or 2**63),
            max_record_bytes=min(int(settings.max_record_bytes), options.max_record_bytes or 2**63),
            max_columns=settings.max_columns,
        )

    def _records_accounted(self, counts: _Counts) -> bool:
        """Valid + rejected + malformed rows = records counted; a record lost fails the file."""
        read = counts.rows + counts.malformed
        passed = read == counts.counted
        detail = f"{counts.counted} records in the file, {read} read"
        if not passed:
            detail = (
                f"the file holds {counts.counted} records but the parser read {read} "
                f"({counts.rows} rows and {counts.malformed} malformed): records cannot be "
                "told apart reliably (a stray quote or line break?)"
            )
        self.checks.append(
            CheckResult("records", "records", "error", passed, int(not passed), detail=detail)
        )
        return passed

    def _encoding_failure(self, scan: Prescan) -> QualityResult:
        self.report.encoding_errors = scan.encoding_errors
        self.report.encoding_error_count = scan.encoding_error_count
        first = scan.encoding_errors[0]
        self._remove_copy(scan)
        self.report.reason = ReportReason(
            Reason.DATA_ENCODING,
            f"{scan.encoding_error_count} byte sequence(s) are not valid "
            f"{self.contract.parse.encoding}; the first at byte offset {first.byte_offset} "
            f"(line {first.line})",
        )
        return self._result(outcome="fail", valid=None, rejected=None)

    def _columns_present(self, scan: Prescan) -> bool:
        """Map the header to the schema; a missing or unexpected column fails the file."""
        if self.format == "parquet":
            return self._parquet_columns()
        if self.json is not None:
            return self._match_columns(self.json.keys)
        if self.format != "csv" or not self.contract.parse.header:
            return True
        if scan.records is not None:
            header = scan.records.header or []
        else:
            options = self.contract.parse
            header = next(
                csv.reader(
                    [scan.header or ""], delimiter=options.delimiter, quotechar=options.quote
                ),
                [],
            )
        names = [name.strip() for name in header]
        return self._match_columns(names)

    def _parquet_columns(self) -> bool:
        import duckdb  # the engine; imported with the first analysis

        with duckdb.connect() as probe:
            try:
                result = probe.execute("SELECT * FROM read_parquet($1) LIMIT 0", [str(self.path)])
            except duckdb.Error as exc:
                if _is_engine_failure(exc):
                    raise QualityEngineError(self.report.file, first_line(exc)) from exc
                unreadable = f"unreadable: {first_line(exc)}"
                failed = CheckResult("readable", "parse", "error", False, 1, detail=unreadable)
                self.checks.append(failed)
                return False
            names = [str(column[0]) for column in result.description]
        if len(names) > self.settings.max_columns:
            detail = f"{len(names)} columns, more than the limit of {self.settings.max_columns}"
            self.checks.append(CheckResult("width", "width", "error", False, 1, detail=detail))
            return False
        return self._match_columns(names)

    def _match_columns(self, names: list[str]) -> bool:
        """Lay the file's columns out by the schema policy; refused columns fail the file."""
        layout = layout_columns(self.declared, names, self.format)
        if not layout.problems and not layout.columns:
            layout = replace(layout, problems=("no columns: the file names none",))
        if layout.problems:
            detail = "; ".join(layout.problems)
            self.checks.append(CheckResult("columns", "columns", "error", False, 1, detail=detail))
            return False
        self.layout = layout
        self.contract = replace(self.declared, columns=layout.columns)
        self.rules = row_rules(self.contract)
        self.order = list(layout.order)
        detail = "; ".join(layout.notes)
        self.checks.append(CheckResult("columns", "columns", "error", True, detail=detail))
        return True

    # ------------------------------------------------------------ DuckDB

    def _connect(self, data_path: Path, out_dir: Path | None) -> None:
        if self.engine is not None:  # the delivery's database: a connection of our own
            self._connection = self.engine.connect()
            return
        import duckdb  # the engine; imported with the first analysis

        config: dict[str, Any] = {
            "memory_limit": f"{int(self.settings.memory_limit)}B",
            "preserve_insertion_order": True,
        }
        config["threads"] = unit_threads(self.settings.threads)
        connection = duckdb.connect(config=config)
        allowed = {str(p.resolve()) + "/" for p in (data_path.parent, self._scratch)}
        if out_dir is not None:
            allowed.add(str(out_dir.resolve()) + "/")
        spill = self._scratch / "spill"
        for statement in (
            f"SET temp_directory = {sql_text(str(spill))}",
            f"SET allowed_directories = [{', '.join(sql_text(a) for a in sorted(allowed))}]",
            "SET enable_external_access = false",
            "SET enable_progress_bar = false",
            "SET TimeZone = 'UTC'",  # values typed in UTC, as on the delivery's engine
            "SET lock_configuration = true",
        ):
            connection.execute(statement)
        self._connection = connection

    def _sql(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = self._connection.execute(sql, parameters).fetchall()
        return result

    def _source(self, data_path: Path | Sequence[Path], *, store_rejects: bool) -> str:
        """SQL reading the file with every column as text, named ``__raw_<i>``."""
        base = self._file_source(data_path, store_rejects=store_rejects)
        if not self.layout.filled:
            return base
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {raw_name(i)}" for i in self.layout.filled)
        return f"(SELECT *, {nulls} FROM {base})"

    def _file_source(self, data_path: Path | Sequence[Path], *, store_rejects: bool) -> str:
        """SQL reading the columns the file has, as text, named ``__raw_<i>``; several CSV
        files at once (a batch) with the column ``filename`` saying which."""
        columns = ", ".join(f"{sql_text(raw_name(i))}: 'VARCHAR'" for i in self.order)
        several = not isinstance(data_path, Path)
        if isinstance(data_path, Path):
            path = sql_text(str(data_path))
        else:
            path = f"[{', '.join(sql_text(str(p)) for p in data_path)}]"
        if self.format in _JSON_FORMATS:
            names = ", ".join(
                f"{ident(self.contract.columns[i].name)} AS {raw_name(i)}" for i in self.order
            )
            spec = ", ".join(
                f"{sql_text(self.contract.columns[i].name)}: 'VARCHAR'" for i in self.order
            )
            size = self.limits.max_record_bytes + _LINE_SIZE_MARGIN
            return (
                f"(SELECT {names} FROM read_json({path}, format = 'newline_delimited', "
                f"columns = {{{spec}}}, maximum_object_size = {size}))"
            )
        if self.format == "parquet":
            names = ", ".join(
                f"CAST({ident(self.contract.columns[i].name)} AS VARCHAR) AS {raw_name(i)}"
                for i in self.order
            )
            return f"(SELECT {names} FROM read_parquet({path}))"
        options = self.contract.parse
        nulls = ", ".join(sql_text(v) for v in options.null_values) or "''"
        rejects = (
            f", store_rejects = true, rejects_table = '{_REJECTS}', "
            f"rejects_scan = '{_REJECT_SCANS}'"
            if store_rejects
            else ", ignore_errors = true"
        )
        escape = options.escape if options.escape is not None else options.quote
        line_size = self.limits.max_record_bytes + _LINE_SIZE_MARGIN
        # DuckDB's default buffer, 16 longest lines (256 MiB), would not fit its memory limit.
        buffer = _BUFFERS_PER_LINE * line_size
        return (
            f"read_csv({path}, columns = {{{columns}}}, header = {str(options.header).lower()}, "
            f"delim = {sql_text(options.delimiter)}, quote = {sql_text(options.quote)}, "
            f"escape = {sql_text(escape)}, nullstr = [{nulls}], auto_detect = false, "
            f"strict_mode = true, max_line_size = {line_size}, buffer_size = {buffer}{rejects}"
            f"{', filename = true' if several else ''})"
        )

    def _typed(
        self,
        data_path: Path | Sequence[Path],
        *,
        store_rejects: bool = False,
        numbered: bool = False,
    ) -> str:
        """SQL of the relation: ``__rec`` (when numbered), raw text and typed columns; and
        ``filename`` when it reads several files."""
        typed = ", ".join(
            f"{typed_expr(c, raw_name(i))} AS {ident(c.name)}"
            for i, c in enumerate(self.contract.columns)
        )
        raws = ", ".join(raw_name(i) for i in range(len(self.contract.columns)))
        if not isinstance(data_path, Path):
            raws = f"filename, {raws}"
        source = self._source(data_path, store_rejects=store_rejects)
        if numbered:
            source = f"(SELECT row_number() OVER () AS __rec, * FROM {source})"
            raws = f"__rec, {raws}"
        return f"(SELECT {raws}, {typed} FROM {source} AS src)"

    def _aggregate(self, data_path: Path, hashed: Sequence[tuple[int, Check]] = ()) -> _Counts:
        """The single full pass: row count, every rule's failures, the profile and, for the
        ``hashed`` unique checks, the list of their key hashes (see :meth:`_repeats`).

        The top values of a sampled CSV are counted meanwhile, on a connection of their
        own: their query reads the sample on one core while the checking pass ends and
        the key hashes are counted, which leave the other core idle at times."""
        exprs = self.aggregate_exprs()
        statement = self._aggregate_statement(exprs, data_path, hashed)
        self._scan_made = self._scan_made or bool(hashed)
        top = self._start_sample_top() if self._sampled_top else None
        try:
            try:
                # Interrupted while waiting, the query started ahead is stopped on exit.
                rows = self._ahead.result() if self._ahead is not None else self._sql(statement)
                self._ahead = None
                if hashed:  # the key hash lists stay in the engine, in its scan table
                    columns = ", ".join(f"__a{i}" for i in range(len(exprs)))
                    rows = self._sql(f"SELECT {columns} FROM {self._scan_table}")
                (found,) = rows
            except Exception as exc:
                return self._unreadable(exc)
            settled = self._repeats(hashed) if hashed else []
            values = list(found)
            if top is not None:
                values = self._with_sampled_top(values, self._sample_top_values(top))
        finally:
            if top is not None:
                top.close()
        counts = self._counts(values)
        counts.malformed = self._malformed()
        for label in settled:
            counts.failures[label] = 0
        return counts

    def _with_sampled_top(self, values: Sequence[Any], tops: Sequence[Any]) -> list[Any]:
        """The checking pass's values with each column's top values from the pre-pass's
        sample of the records, ``tops``."""
        offset = 1 + len(self._counted_rules())
        width = len(profile_exprs(self.contract.columns))
        profiled = with_top_values(values[offset : offset + width], tops)
        return [*values[:offset], *profiled, *values[offset + width :]]

    def _start_sample_top(self) -> _SampleTop:
        """Start counting each column's top values in the sample, written as a small file
        in the dialect, on a connection of its own."""
        path = self._scratch / "sample.csv"
        options = self.contract.parse
        with path.open("w", encoding="utf-8", newline="") as out:
            if options.header:  # a record of empty fields in place of the header
                out.write(options.delimiter * (len(self.order) - 1) + "\n")
            out.writelines(self._sample)
        exprs = top_value_exprs(self.contract.columns, top=self.settings.top_values)
        statement = f"SELECT {', '.join(exprs)} FROM {self._typed(path)} AS t"
        return _SampleTop(self._connection.cursor(), statement, path, len(exprs))

    def _sample_top_values(self, top: _SampleTop) -> list[Any]:
        """The top values ``top`` counted (none when the engine cannot read the sample)."""
        try:
            (row,) = top.query.result()
        except Exception as exc:
            if _is_engine_failure(exc):
                raise
            logger.debug("top values of %s left out: %s", self.report.file, first_line(exc))
            return [None] * top.width
        return list(row)

    def _aggregate_statement(
        self, exprs: Sequence[str], data_path: Path, hashed: Sequence[tuple[int, Check]]
    ) -> str:
        """The checking pass's SQL: a query of the aggregates or, with ``hashed`` unique
        checks, a table of them (``__a<i>``) and of each check's key hashes."""
        relation = self._typed(data_path, store_rejects=self.format == "csv")
        if not hashed:
            return f"SELECT {', '.join(exprs)} FROM {relation} AS t"
        named = [f"{expr} AS __a{i}" for i, expr in enumerate(exprs)]
        for index, check in hashed:
            value = ident(check.column or "")
            hashed_value = key_hash(value)
            named += [
                f"list({hashed_value}) FILTER (WHERE {value} IS NOT NULL "
                f"AND {hashed_value} % {_KEY_PARTS} = {part}) AS {_key_list(index, part)}"
                for part in range(_KEY_PARTS)
            ]
        # OR REPLACE: a table of a pass stopped early whose drop failed is not this one's error
        table = f"CREATE OR REPLACE TABLE {self._scan_table}"
        return f"{table} AS SELECT {', '.join(named)} FROM {relation} AS t"

    # ------------------------------------------------------------ the checking pass ahead

    def _start_ahead(self, out_dir: Path | None) -> None:
        """Start the checking query the analysis will most likely run, while the pre-pass
        reads the file (see :mod:`.ahead`): for a large UTF-8 CSV read as it is, laid out
        by the header found in its first lines, assuming no NUL and no surprise."""
        options = self.contract.parse
        if (
            self.format != "csv"
            or self.contract.control.trailer_pattern is not None
            or not utf8_compatible(options.encoding)
        ):
            return
        try:
            guessed = self._guess()
        except (OSError, ValueError, csv.Error) as exc:  # the pre-pass will say what is wrong
            logger.debug("no checking query ahead for %s: %s", self.report.file, exc)
            return
        if guessed is None:
            return
        guess, records = guessed
        scan = Prescan(data_path=self.path, records=RecordCount(records=records), nul=False)
        guess._settled = guess._settled_rules(scan)
        guess._sampled_top = self.settings.top_values > 0  # a large CSV has a sample
        hashed = guess._hashed_uniques(scan)
        statement = guess._aggregate_statement(guess.aggregate_exprs(), self.path, hashed)
        try:
            self._connect(self.path, out_dir)
        except Exception as exc:  # the engine pass connects again and reports it as its own
            if not _is_duckdb_error(exc):
                raise
            logger.debug("no checking query ahead for %s: %s", self.report.file, exc)
            return
        self._ahead = AheadQuery(self._connection, statement)
        self._scan_made = bool(hashed)

    def _guess(self) -> tuple[_Analysis, int] | None:
        """A copy of the analysis laid out by the header in the file's first lines, and the
        records the file would hold at their average length; ``None`` for a small file or
        first lines that do not decode or break a limit."""
        size = self.path.stat().st_size
        if size < _AHEAD_BYTES:
            return None
        with self.path.open("rb") as stream:
            head = stream.read(_AHEAD_HEAD)
        cut = head.rfind(b"\n") + 1
        try:
            text = head[:cut].decode(self.contract.parse.encoding)
        except UnicodeDecodeError:
            return None
        options, columns = self.contract.parse, len(self.contract.columns)
        found = count_records([text], options, columns=columns, limits=self.limits)
        if not cut or found.oversize is not None or found.header is None:
            return None
        guess = copy.copy(self)
        guess.checks = []
        if options.header and not guess._match_columns([n.strip() for n in found.header]):
            return None
        return guess, (found.records + 1) * size // cut

    def _keep_ahead(self, data_path: Path, hashed: Sequence[tuple[int, Check]]) -> None:
        """Keep the query started ahead only if it is the one this analysis runs now."""
        if self._ahead is None:
            return
        statement = self._aggregate_statement(self.aggregate_exprs(), data_path, hashed)
        if self._ahead.statement != statement:
            self._drop_ahead()

    def _drop_ahead(self) -> None:
        """Interrupt the query started ahead and close its connection (its tables go)."""
        if self._ahead is None:
            return
        self._ahead.cancel()
        self._ahead = None
        self._forget_scan()
        self._connection.close()
        self._connection = None

    def _hashed_uniques(self, scan: Prescan) -> list[tuple[int, Check]]:
        """The unique checks settled by key hashes in the checking pass: all of them when the
        pre-pass counted the records and their hashes fit in a third of the memory limit
        (else each groups its column in a pass of its own, which may spill)."""
        checks = unique_index(self.contract)
        if not checks or scan.records is None:
            return []
        needed = scan.records.records * len(checks) * _KEY_HASH_BYTES
        return checks if needed <= int(self.settings.memory_limit) // 3 else []

    def _repeats(self, hashed: Sequence[tuple[int, Check]]) -> list[str]:
        """The ``hashed`` unique checks whose key hashes are all distinct (no value repeats),
        by label; one whose hash repeats is left to the exact grouping of :meth:`_unique`.

        A hash falls in one part whatever row holds it, so the parts' repeats add up. The
        engine counts a part on one core (its list is one row): half the parts are counted
        on a second connection meanwhile."""
        try:
            settled = []
            for index, check in hashed:
                half = _KEY_PARTS // 2
                beside = BackgroundQuery(
                    self._connection.cursor(), self._repeats_sql(index, range(half))
                )
                try:
                    ((repeated,),) = self._sql(self._repeats_sql(index, range(half, _KEY_PARTS)))
                    ((more,),) = beside.result()
                finally:
                    beside.cancel()
                    beside.connection.close()
                if not repeated and not more:
                    settled.append(check.label)
        except BaseException:
            with suppress(Exception):  # the engine's error is the one to raise
                self._drop_scan()
            raise
        self._drop_scan()
        return settled

    def _repeats_sql(self, index: int, parts: Iterable[int]) -> str:
        """SQL of the repeated key hashes of the ``index``-th unique check in ``parts``:
        hashes less distinct hashes (``SELECT DISTINCT``, grouped on the engine's threads,
        a fifth cheaper than ``count(DISTINCT)``)."""
        counts = " UNION ALL ".join(
            f"SELECT coalesce(len({keys}), 0) - (SELECT count(*) FROM (SELECT DISTINCT h FROM "
            f"(SELECT unnest({keys}) AS h FROM {self._scan_table}))) AS r FROM {self._scan_table}"
            for keys in (_key_list(index, part) for part in parts)
        )
        return f"SELECT sum(r) FROM ({counts})"

    def _drop_scan(self) -> None:
        self._sql(f"DROP TABLE IF EXISTS {self._scan_table}")
        self._scan_made = False

    def _forget_scan(self) -> None:
        """Drop a scan table left by a pass that stopped early from the delivery's database
        (a database of the analysis's own goes with its connection)."""
        if not self._scan_made or self.engine is None:
            return
        try:
            self._drop_scan()
        except Exception as exc:  # cleaning up: the engine's error, if any, is raised already
            if not _is_duckdb_error(exc):
                raise
            logger.debug("scan table of %s left to the engine: %s", self.report.file, exc)

    def aggregate_exprs(self) -> list[str]:
        """The aggregates of the checking pass: rows, each rule's failures, the profile and
        the inferred columns' type counts."""
        # No count(DISTINCT) here: mixed with other aggregates DuckDB materialises the
        # whole scan first (and spills it); unique checks group their column on their own.
        exprs = ["count(*)"]
        exprs += [f"count_if({r.fails})" for r in self._counted_rules()]
        top = 0 if self._sampled_top else self.settings.top_values
        exprs += profile_exprs(self.contract.columns, top=top)
        return exprs + inference_exprs(self._inferred_columns())

    def _counted_rules(self) -> list[Rule]:
        """The rules the checking pass counts: all but the unique and the settled ones, and
        the not-null ones, whose counts the profile's non-null counts give."""
        return [
            r
            for r in self.rules
            if r.kind not in ("unique", "not_null") and r.name not in self._settled
        ]

    def _counts(self, values: Sequence[Any]) -> _Counts:
        """The counts, profile and columns from the values of :meth:`aggregate_exprs`."""
        rules = self._counted_rules()
        counts = _Counts(rows=int(values[0] or 0), failures=dict(self._settled))
        for offset, rule in enumerate(rules, start=1):
            counts.failures[rule.name] = int(values[offset] or 0)  # NULL over no rows
        offset = 1 + len(rules)
        profiled = len(profile_exprs(self.contract.columns))
        profile = values[offset : offset + profiled]
        positions = {column.name: i for i, column in enumerate(self.contract.columns)}
        for rule in self.rules:
            if rule.kind == "not_null" and rule.name not in self._settled:
                present = present_count(profile, positions[rule.column or ""])
                counts.failures[rule.name] = counts.rows - present  # the profile's count
        self.report.profile = profile_columns(self.contract.columns, profile, counts.rows)
        approximate, omitted = profile_kinds(self.settings.top_values)
        self.report.profile_approximate, self.report.profile_omitted = approximate, omitted
        inferred = self._inferred_columns()
        types = inferred_types(values[offset + profiled :], len(inferred))
        self._record_columns(dict(zip(inferred, types, strict=True)))
        return counts

    def _inferred_columns(self) -> list[int]:
        """The columns whose type is inferred: all in an open schema, else the extra ones."""
        if self.declared.schema.open:
            return list(range(len(self.contract.columns)))
        return [i for i in self.layout.extra if i not in self.layout.dropped]

    def _record_columns(self, inferred: dict[int, str]) -> None:
        """The published file's columns, with declared or inferred types, for the report."""
        open_schema = self.declared.schema.open
        columns = []
        for index in self.layout.published:
            column = self.contract.columns[index]
            if index in inferred:
                kind = inferred[index]
                columns.append(
                    FileColumn(column.name, kind, "inferred" if open_schema else "extra")
                )
            elif index in self.layout.filled:
                columns.append(FileColumn(column.name, column.type, "filled"))
            else:
                columns.append(FileColumn(column.name, column.type, "declared"))
        self.report.columns = columns

    def _unreadable(self, exc: Exception) -> _Counts:
        """A file DuckDB cannot parse at all (broken JSON lines, mixed line breaks) fails.

        A failure of the engine itself (out of memory, I/O, an internal error) is no
        verdict on the data: it is raised, as :class:`QualityEngineError` by the caller.
        """
        if _is_engine_failure(exc):
            raise exc
        message = first_line(exc)
        breaks = self._line_breaks()
        if len(breaks) > 1:
            message += f" (the file mixes {' and '.join(breaks)} line breaks)"
        self.checks.append(
            CheckResult("readable", "parse", "error", False, 1, detail=f"unreadable: {message}")
        )
        return _Counts(unreadable=True)

    def _line_breaks(self) -> list[str]:
        return sorted(self._breaks)

    def _malformed(self) -> int:
        if not self._has_rejects:
            return 0
        # Most files have no rejected record: probing the table costs a third of grouping it.
        if not self._sql(f"SELECT 1 FROM {_REJECTS} LIMIT 1"):
            return 0
        grouped = self._rejected_records()
        ((count,),) = self._sql(f"SELECT count(*) FROM {grouped}")
        if not count:
            return 0
        samples = self._sql(
            f"SELECT line, byte, error, text FROM {grouped} ORDER BY line LIMIT $1",
            [self.settings.malformed_samples],
        )
        self.report.malformed = [
            MalformedRow(int(line), None if byte is None else int(byte), str(error), str(text))
            for line, byte, error, text in samples
        ]
        return int(count)

    @property
    def _has_rejects(self) -> bool:
        """Whether records that did not parse are in the rejects table (CSV, JSON)."""
        return self.format == "csv" or self.json is not None

    def _rejected_records(self) -> str:
        """One row per record DuckDB could not split, from the first (storing) scan."""
        return (
            # DuckDB counts line_byte_position from 1.
            f"(SELECT line, min(line_byte_position) - 1 AS byte, "
            "arg_min(error_message, coalesce(column_idx, 0)) AS error, "
            f"left(first(csv_line), {_MAX_TEXT}) AS text FROM {_REJECTS} "
            f"WHERE scan_id = (SELECT min(scan_id) FROM {_REJECTS}) GROUP BY line)"
        )

    def _unique(self, data_path: Path, counts: _Counts) -> None:
        """Count every row of a duplicated value (all occurrences) for the unique checks the
        key hashes did not settle: exact grouping of the values."""
        for index, check in unique_index(self.contract):
            if check.label in counts.failures:
                continue  # no key hash repeats: no value does
            column = ident(check.column or "")
            table = unique_table(index)
            relation = self._typed(data_path)
            self._sql(
                f"CREATE TEMP TABLE {table} AS SELECT {column} AS v, count(*) AS n "
                f"FROM {relation} AS t WHERE {column} IS NOT NULL GROUP BY {column} "
                "HAVING count(*) > 1"
            )
            ((rows,),) = self._sql(f"SELECT coalesce(sum(n), 0) FROM {table}")
            counts.failures[check.label] = int(rows)

    def _row_checks(self, data_path: Path, counts: _Counts) -> int:
        """Report each row rule; collect failing rows once; return the rejected row count."""
        failed = [r for r in self.rules if counts.failures.get(r.name, 0) > 0]
        if failed:
            self._collect_bad_rows(data_path, failed)
        for rule in self.rules:
            count = counts.failures.get(rule.name, 0)
            samples = self._samples(failed.index(rule)) if rule in failed else []
            self.checks.append(
                CheckResult(
                    name=rule.name,
                    kind=rule.kind,
                    severity=rule.severity,
                    passed=count == 0,
                    failed_count=count,
                    column=rule.column,
                    samples=samples,
                )
            )
        if self._has_rejects:
            malformed = [Sample(m.line, {"_raw": m.text}) for m in self.report.malformed]
            self.checks.append(
                CheckResult(
                    name="malformed",
                    kind="malformed",
                    severity="error",
                    passed=counts.malformed == 0,
                    failed_count=counts.malformed,
                    detail=self._malformed_detail(),
                    samples=malformed[: self.settings.sample_rows],
                )
            )
        self._failed_rules = failed
        errors = [i for i, r in enumerate(failed) if r.severity == "error"]
        bad_rows = 0
        if errors:
            condition = " OR ".join(f"__f{i}" for i in errors)
            ((bad_rows,),) = self._sql(f"SELECT count(*) FROM __bad WHERE {condition}")
        return int(bad_rows) + counts.malformed

    def _malformed_detail(self) -> str:
        """For JSON, how many malformed records each reason has."""
        if self.json is None or not self.json.malformed:
            return ""
        return "; ".join(f"{code.value}: {n}" for code, n in self.json.by_reason.most_common())

    def _collect_bad_rows(self, data_path: Path, failed: list[Rule]) -> None:
        """``__bad``: every row failing some rule, with one flag per rule and its line."""
        flags = ", ".join(f"{r.fails} AS __f{i}" for i, r in enumerate(failed))
        any_fails = " OR ".join(r.fails for r in failed)
        raws = ", ".join(raw_name(i) for i in range(len(self.contract.columns)))
        relation = self._typed(data_path, numbered=True)
        self._sql(
            f"CREATE TEMP TABLE __numbered_bad AS SELECT __rec, {raws}, {flags} "
            f"FROM {relation} AS t WHERE {any_fails}"
        )
        header = 1 if self.format == "csv" and self.contract.parse.header else 0
        if self._has_rejects:
            # Records DuckDB could not split are not numbered: add those before each row.
            self._sql(
                "CREATE TEMP TABLE __gaps AS SELECT g, max(j) AS j FROM ("
                f"SELECT line - {header} - row_number() OVER (ORDER BY line) AS g, "
                "row_number() OVER (ORDER BY line) AS j "
                f"FROM (SELECT DISTINCT line FROM {_REJECTS} "
                f"WHERE scan_id = (SELECT min(scan_id) FROM {_REJECTS}))) GROUP BY g"
            )
        else:
            self._sql("CREATE TEMP TABLE __gaps (g BIGINT, j BIGINT)")
        self._sql(
            f"CREATE TEMP TABLE __bad AS SELECT b.__rec + {header} + coalesce(g.j, 0) AS __line, "
            "b.* FROM __numbered_bad AS b ASOF LEFT JOIN __gaps AS g ON b.__rec > g.g"
        )

    def _samples(self, flag: int) -> list[Sample]:
        names = [c.name for c in self.contract.columns]
        raws = ", ".join(raw_name(i) for i in range(len(names)))
        rows = self._sql(
            f"SELECT __line, {raws} FROM __bad WHERE __f{flag} ORDER BY __line LIMIT $1",
            [self.settings.sample_rows],
        )
        return [Sample(int(row[0]), dict(zip(names, row[1:], strict=True))) for row in rows]

    def _file_checks(self, scan: Prescan, counts: _Counts) -> None:
        total = counts.rows + counts.malformed
        for check in self.contract.checks:
            if check.kind == "row_count":
                self.checks.append(_row_count_result(check, total))
        pattern = self.contract.control.trailer
        if pattern is not None and self.format != "parquet":
            self.checks.append(trailer_result(pattern, scan.trailer, total))

    # ------------------------------------------------------------ decision and outputs

    def _decide(
        self, counts: _Counts, rejected: int, out_dir: Path | None, scan: Prescan
    ) -> QualityResult:
        total = counts.rows + counts.malformed
        row_level = {r.name for r in self.rules} | {"malformed"}
        file_failures = [
            c
            for c in self.checks
            if not c.passed and c.severity == "error" and c.name not in row_level
        ]
        rows = RowCounts(total=total, malformed=counts.malformed, rejected=rejected)
        splittable = (
            rejected > 0
            and not file_failures
            and self.contract.max_rejected_fraction.allows(rejected, total)
        )
        if rejected == 0 or splittable:
            rows = replace(rows, valid=total - rejected)
        return self._finish(rows, out_dir, scan, split=splittable)

    def _finish(
        self, rows: RowCounts, out_dir: Path | None, scan: Prescan, *, split: bool
    ) -> QualityResult:
        self.report.rows = rows
        reason = self._reason(rows, split)
        if reason is not None:
            self.report.reason = reason
            self._remove_copy(scan)
            return self._result(outcome="fail", valid=None, rejected=None)
        if not split or out_dir is None:
            self.report.split = split
            if self.layout.rewrite and out_dir is not None:
                return self._result(
                    outcome="pass", valid=self._rewrite(scan, out_dir), rejected=None
                )
            return self._result(outcome="pass", valid=scan.data_path, rejected=None)
        valid, rejected = self._split(self._engine_path(scan), out_dir)
        self.report.split = True
        return self._result(outcome="pass", valid=valid, rejected=rejected)

    def _reason(self, rows: RowCounts, split: bool) -> ReportReason | None:
        failed = [c for c in self.checks if not c.passed and c.severity == "error"]
        if split or not failed:
            return None
        code, chosen = _reason_for(failed)
        if code == Reason.DATA_PARSE_ERROR:
            code = self._record_code(chosen)
        summary = "; ".join(_describe(c) for c in chosen[:5])
        if rows.rejected and not split:
            summary += (
                f"; {rows.rejected} of {rows.total} rows fail, above the limit of "
                f"{self.contract.max_rejected_fraction}"
            )
        return ReportReason(code, summary)

    def _record_code(self, failed: list[CheckResult]) -> Reason:
        """``data.parse_error``, or for malformed JSON records alone the reason most of
        them have (``data.number_range``, ``data.nesting``...)."""
        only_records = all(check.kind == "malformed" for check in failed)
        if only_records and self.json is not None and self.json.by_reason:
            return self.json.by_reason.most_common(1)[0][0]
        return Reason.DATA_PARSE_ERROR

    def _rewrite(self, scan: Prescan, out_dir: Path) -> Path:
        """The file with its columns as the policy publishes them (extra ones dropped,
        missing ones empty), written in the file's own format and dialect."""
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / self.path.name
        staged = self._scratch / f"rewritten{target.suffix or '.csv'}"
        self._copy_valid(self._engine_path(scan), staged, "")
        self._remove_copy(scan)
        shutil.move(staged, target)
        return target

    def _split(self, data_path: Path, out_dir: Path) -> tuple[Path, Path]:
        """Write the valid rows and the rejected rows, each with one ``COPY``."""
        names = [c.name for c in self.contract.columns]
        errors = [i for i, r in enumerate(self._failed_rules) if r.severity == "error"]
        bad = " OR ".join(f"__f{i}" for i in errors)
        out_dir.mkdir(parents=True, exist_ok=True)
        valid_path = out_dir / self.path.name
        rejected_path = out_dir / f"{self.path.name}{REJECTED_SUFFIX}"
        staged = self._scratch / f"valid{valid_path.suffix or '.csv'}"
        self._copy_valid(data_path, staged, bad)
        labels = ", ".join(
            f"CASE WHEN __f{i} THEN {sql_text(self._failed_rules[i].name)} END" for i in errors
        )
        columns = ", ".join(f"{raw_name(i)} AS {ident(n)}" for i, n in enumerate(names))
        nulls = ", ".join(f"NULL AS {ident(n)}" for n in names)
        parts = []
        if errors:
            parts.append(
                f"SELECT {columns}, __line AS _line, concat_ws(';', {labels}) AS _failed_check, "
                f"NULL AS _raw FROM __bad WHERE {bad}"
            )
        if self._has_rejects:
            parts.append(
                f"SELECT {nulls}, line AS _line, 'malformed' AS _failed_check, text AS _raw "
                f"FROM {self._rejected_records()}"
            )
        self._sql(
            f"COPY ({' UNION ALL '.join(parts)} ORDER BY _line) TO "
            f"{sql_text(str(rejected_path))} (FORMAT csv, HEADER true)"
        )
        shutil.move(staged, valid_path)
        return valid_path, rejected_path

    def _copy_valid(self, data_path: Path, target: Path, bad: str) -> None:
        keep = f"__rec NOT IN (SELECT __rec FROM __bad WHERE {bad})" if bad else "TRUE"
        path = sql_text(str(data_path))
        published = self.layout.published
        if self.format == "csv":
            options = self.contract.parse
            columns = ", ".join(
                f"{raw_name(i)} AS {ident(self.contract.columns[i].name)}" for i in published
            )
            relation = self._typed(data_path, numbered=True)
            # Written in the contract's own dialect, so the split file reads like the original.
            escape = options.escape if options.escape is not None else options.quote
            null = options.null_values[0] if options.null_values else ""
            self._sql(
                f"COPY (SELECT {columns} FROM {relation} AS t WHERE {keep} ORDER BY __rec) TO "
                f"{sql_text(str(target))} (FORMAT csv, HEADER {str(options.header).lower()}, "
                f"DELIMITER {sql_text(options.delimiter)}, QUOTE {sql_text(options.quote)}, "
                f"ESCAPE {sql_text(escape)}, NULLSTR {sql_text(null)})"
            )
            return
        names = [self.contract.columns[i].name for i in published]
        if self.json is not None:
            # JSON values as written (numbers stay numbers, objects stay objects).
            spec = ", ".join(f"{sql_text(name)}: 'JSON'" for name in names)
            reader = f"read_json({path}, format = 'newline_delimited', columns = {{{spec}}})"
            written = "FORMAT json, ARRAY true" if self.format == "json" else "FORMAT json"
            selected = ", ".join(ident(name) for name in names)
        else:
            reader = f"read_parquet({path})"
            written = "FORMAT parquet"
            selected = ", ".join(
                f"CAST(NULL AS {self.contract.columns[i].sql_type}) AS {ident(name)}"
                if i in self.layout.filled
                else ident(name)
                for i, name in zip(published, names, strict=True)
            )
        source = (
            f"(SELECT * FROM (SELECT row_number() OVER () AS __rec, * FROM {reader}) "
            f"WHERE {keep} ORDER BY __rec)"
        )
        self._sql(f"COPY (SELECT {selected} FROM {source}) TO {sql_text(str(target))} ({written})")

    def _remove_copy(self, scan: Prescan) -> None:
        if scan.data_path != self.path:
            scan.data_path.unlink(missing_ok=True)

    def _result(self, *, outcome: str, valid: Path | None, rejected: Path | None) -> QualityResult:
        self.report.outcome = "pass" if outcome == "pass" else "fail"
        self.report.checks = self.checks
        self.report.engine = _engine_name()
        self.report.duration_seconds = round(time.perf_counter() - self.started, 3)
        # A delivery's members share an engine; its caller logs one summary line for them
        # all, so 10,000 members do not write 10,000 lines at INFO.
        logger.log(
            logging.DEBUG if self.engine is not None else logging.INFO,
            "quality %s: %s, %d rows, %d rejected",
            self.report.file,
            self.report.outcome,
            self.report.rows.total,
            self.report.rows.rejected,
        )
        return QualityResult(self.report, valid, rejected)


class _SampleTop:
    """The top values of the sample being counted on a connection of their own, and the
    sample's file; :meth:`close` stops the query if it still runs and removes both."""

    def __init__(self, connection: Any, statement: str, path: Path, width: int) -> None:
        self.connection = connection
        self.path = path
        self.width = width  # the values the query gives
        self.query = BackgroundQuery(connection, statement)

    def close(self) -> None:
        self.query.cancel()
        self.connection.close()
        self.path.unlink(missing_ok=True)


def _reason_for(failed: list[CheckResult]) -> tuple[Reason, list[CheckResult]]:
    """The reason code for failed ``error`` checks, and the checks it stands for."""
    control = [c for c in failed if c.kind.startswith("control")]
    if control:
        return Reason.CONTROL_MISMATCH, control
    for kinds, reason in _REASONS:
        chosen = [c for c in failed if c.kind in kinds]
        if chosen:
            return reason, chosen
    return Reason.DATA_QUALITY, failed


def _oversize_result(oversize: Oversize) -> CheckResult:
    """The failed ``size`` (bytes) or ``width`` (columns) check of a record over its limit."""
    if oversize.what == "columns":
        return CheckResult(
            "width", "width", "error", False, 1, detail=f"{oversize.describe()} (max_columns)"
        )
    setting = f"max_{oversize.what}_bytes"
    return CheckResult(
        "size", "size", "error", False, 1, detail=f"{oversize.describe()} ({setting})"
    )


def _is_duckdb_error(exc: Exception) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)


def _is_engine_failure(exc: Exception) -> bool:
    """Whether ``exc`` is the engine failing (memory, disk, interruption, a bug), not the data."""
    import duckdb

    return not isinstance(exc, duckdb.Error) or isinstance(
        exc,
        duckdb.OutOfMemoryException
        | duckdb.IOException
        | duckdb.InterruptException
        | duckdb.InternalException
        | duckdb.FatalException
        | duckdb.PermissionException,
    )


def _row_count_result(check: Check, total: int) -> CheckResult:
    low, high = check.min, check.max
    too_few = low is not None and total < int(low)
    too_many = high is not None and total > int(high)
    bounds = f"[{'' if low is None else low}, {'' if high is None else high}]"
    return CheckResult(
        name=check.label,
        kind="row_count",
        severity=check.severity,
        passed=not (too_few or too_many),
        failed_count=int(too_few or too_many),
        detail=f"{total} rows, expected {bounds}",
    )


def _describe(check: CheckResult) -> str:
    if check.detail:
        return f"{check.name}: {check.detail}"
    return f"{check.name}: {check.failed_count} rows fail"


def _resolve_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if _JSON_ARRAY.match(text):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def _engine_name() -> str:
    import duckdb

    return f"duckdb {duckdb.__version__}"


def _key_list(index: int, part: int) -> str:
    """The column of the scan table (:data:`_SCAN`) holding the key hashes of the
    ``index``-th check that fall in part ``part`` (hash modulo :data:`_KEY_PARTS`)."""
    return f"__keys_{index}_{part}"
