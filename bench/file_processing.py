"""Benchmark of file_processing: an encrypted, zipped vendor drop, end to end and checks alone.

    .venv/bin/python bench/run.py file_processing [--rows 1000000 5000000] [--workdir DIR]

For each size, one day of retail transactions (examples/retail/generate.py) is zipped
(deflate, level 6) and encrypted with ``gpg`` to a throw-away key, then, each in its
own child process so that wall time and peak RSS (``os.wait4``) are its own:

* ``platform process``: ``etl-file-processing process landing/pos/pos_20261102.csv.zip.pgp
  --json`` against a local store and the example contract (download, decrypt, unzip,
  every check, publish to ``validated/``); its JSON must say ``validated`` and the rows;
* ``floor``: ``gpg --decrypt | funzip > /dev/null``, the least any tool must do to read
  the drop;
* ``duckdb checks``: the contract's checks written by hand as one DuckDB aggregate
  query over the plain CSV; ``floor + duckdb`` is the two back to back;
* checks alone on the plain CSV: the platform's quality engine (``validate_file``),
  pandera on Polars, Soda Core on DuckDB and Great Expectations on pandas, the same
  checks translated by hand (the third-party tools at the smallest size only, unless
  ``--all-tools-sizes``).

The reference tools run with the interpreter in ``$ETL_BENCH_TOOLS_PYTHON`` (``make
bench`` sets it; default ``.venv-bench/bin/python``); a missing one is reported as
skipped. Standard library at import time: the child processes import this file too
(``--worker``), some of them with that other interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _load_harness() -> ModuleType:
    """bench/harness.py, loaded once by path as ``bench_harness`` (bench/ is off sys.path)."""
    if "bench_harness" not in sys.modules:
        path = Path(__file__).with_name("harness.py")
        spec = importlib.util.spec_from_file_location("bench_harness", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["bench_harness"]


if TYPE_CHECKING:
    import harness
else:
    harness = _load_harness()

HERE = Path(__file__).resolve().parent
CONFIG_DIR, DATASET, DAY = harness.CONFIG_DIR, harness.DATASET, harness.DAY
CSV_NAME = f"pos_{DAY:%Y%m%d}.csv"
LANDING_KEY = f"landing/pos/{CSV_NAME}.zip.pgp"
KEY_ENV = "RETAIL_POS_PGP_KEY"  # the contract's key = "env:RETAIL_POS_PGP_KEY"
BIN, MB = harness.BIN, harness.MB  # decimal megabytes, for MB/s and RSS alike
DEFAULT_TOOLS_PYTHON = harness.ROOT / ".venv-bench" / "bin" / "python"
Result = harness.Result

# Targets (see bench/README.md).
MIN_THROUGHPUT_VS_FLOOR_DUCKDB = 0.8  # end to end vs floor + DuckDB checks back to back
MAX_RSS_MB = 500
RSS_TARGET_ROWS = 5_000_000

PLATFORM = "platform process (e2e)"
FLOOR = "floor: gpg -d | funzip"
DUCKDB = "duckdb checks"
FLOOR_DUCKDB = "floor + duckdb checks"
QUALITY = "platform checks"
QUALITY_LEAN = "platform checks, top_values=0"
PANDERA = "pandera + polars"
SODA = "soda core + duckdb"
GE = "great expectations"
THIRD_PARTY = (PANDERA, SODA, GE)

# This file is named like the package it measures: never let bench/ shadow `file_processing`.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]


# --------------------------------------------------------------------------- the check set

# The contract's check set (examples/retail/config/datasets/pos_transactions.toml) as
# the reference tools reproduce it by hand. `contract_drift` compares it with the
# contract at start-up, so a changed contract is reported instead of silently benchmarked.
COLUMNS = (
    "transaction_id",
    "store_id",
    "register_id",
    "sold_at",
    "product_sku",
    "quantity",
    "unit_price",
    "discount",
    "currency",
    "payment_type",
    "customer_id",
    "loyalty_member",
)
TYPES = {  # the typed columns -> DuckDB type
    "sold_at": "TIMESTAMP",
    "quantity": "BIGINT",
    "unit_price": "DECIMAL(12,2)",
    "discount": "DECIMAL(4,2)",
    "loyalty_member": "BOOLEAN",
}
REQUIRED = (
    "transaction_id",
    "store_id",
    "sold_at",
    "product_sku",
    "quantity",
    "unit_price",
    "currency",
)
UNIQUE = "transaction_id"
RANGES = {"quantity": (1, 1000), "discount": (0, 0.9)}
ALLOWED = {"payment_type": ("card", "cash", "mobile", "voucher"), "currency": ("EUR",)}
REGEX = ("product_sku", r"P\d{5}")  # a full match, as the platform applies it
STORE_CHECK = ("store_matches_register", "starts_with(register_id, store_id || '-')")
WARN_CHECK = ("member_has_customer_id", "NOT loyalty_member OR customer_id IS NOT NULL")
ROW_COUNT = (1, 10_000_000)


def check_set() -> set[str]:
    """The reproduced check set, one canonical line per check."""
    lines = {f"type {c} {t}" for c, t in TYPES.items()}
    lines |= {f"not_null {c}" for c in REQUIRED}
    lines.add(f"unique {UNIQUE}")
    lines |= {f"range {c} {lo:g} {hi:g}" for c, (lo, hi) in RANGES.items()}
    lines |= {f"allowed {c} {sorted(v)}" for c, v in ALLOWED.items()}
    lines.add(f"regex {REGEX[0]} {REGEX[1]}")
    lines.add(f"sql error {STORE_CHECK[1]}")
    lines.add(f"sql warn {WARN_CHECK[1]}")
    lines.add(f"row_count {ROW_COUNT[0]:g} {ROW_COUNT[1]:g}")
    return lines


def contract_drift() -> list[str]:
    """How the contract's columns and checks differ from what the reference tools check."""
    from etl_core.contracts import load_contracts

    contract = load_contracts(CONFIG_DIR).get(DATASET)
    lines = {f"type {c.name} {c.sql_type}" for c in contract.columns if c.type != "string"}
    for check in contract.all_checks():
        if check.kind in ("not_null", "unique"):
            lines.add(f"{check.kind} {check.column}")
        elif check.kind in ("range", "row_count"):
            low, high = (
                float(v) if v is not None else float("nan") for v in (check.min, check.max)
            )
            prefix = f"range {check.column}" if check.kind == "range" else "row_count"
            lines.add(f"{prefix} {low:g} {high:g}")
        elif check.kind == "allowed":
            lines.add(f"allowed {check.column} {sorted(str(v) for v in check.values)}")
        elif check.kind == "regex":
            lines.add(f"regex {check.column} {check.pattern}")
        elif check.kind == "sql":
            lines.add(f"sql {check.severity} {check.expression}")
        else:
            lines.add(f"{check.kind} {check.column}")
    ours = check_set()
    drift = [f"contract only: {line}" for line in sorted(lines - ours)]
    drift += [f"benchmark only: {line}" for line in sorted(ours - lines)]
    if tuple(c.name for c in contract.columns) != COLUMNS:
        drift.append("the contract's columns or their order differ from the benchmark's")
    return drift


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Layout(harness.Layout):
    """The scratch files of one size."""

    @property
    def csv(self) -> Path:
        return self.base / "plain" / CSV_NAME

    @property
    def zip(self) -> Path:
        return self.base / "plain" / f"{CSV_NAME}.zip"

    @property
    def landing(self) -> Path:
        return self.store / LANDING_KEY

    def scratch(self, name: str) -> Path:
        """An empty directory ``<base>/scratch/<name>``."""
        path = self.base / "scratch" / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class Gpg:
    """A throw-away key in a temporary GNUPGHOME (short path: gpg-agent's socket lives there)."""

    home: Path
    fingerprint: str
    secret_key: str
    """ASCII-armoured, no passphrase: what ``RETAIL_POS_PGP_KEY`` holds."""

    def cmd(self, *args: str) -> list[str]:
        return ["gpg", "--homedir", str(self.home), "--batch", "--quiet", "--yes", *args]

    def env(self) -> dict[str, str]:
        return harness.child_env(GNUPGHOME=str(self.home))


def make_key() -> Gpg:
    """Generate the run's key (no passphrase) and export its secret half, armoured."""
    home = Path(tempfile.mkdtemp(prefix="fp-bench-gpg-"))
    base = ["gpg", "--homedir", str(home), "--batch", "--quiet"]
    subprocess.run(
        [
            *base,
            "--passphrase",
            "",
            "--quick-gen-key",
            "ETL benchmark (throw-away) <bench@example.invalid>",
            "future-default",
            "default",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        [*base, "--with-colons", "--list-secret-keys"], check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    secret = subprocess.run(
        [*base, "--armor", "--export-secret-keys", fingerprint],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Gpg(home, fingerprint, secret)


def drop_key(gpg: Gpg) -> None:
    """Stop the key's gpg-agent and remove its GNUPGHOME."""
    subprocess.run(
        ["gpgconf", "--homedir", str(gpg.home), "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(gpg.home, ignore_errors=True)


def prepare(layout: Layout, rows: int, gpg: Gpg) -> tuple[float, float]:
    """Write the CSV and its zip (reused from an earlier run) and the encrypted drop.

    Returns (seconds spent generating and zipping, seconds encrypting).
    """
    clock = time.perf_counter()
    if harness.write_csv(layout.csv, rows):
        layout.zip.unlink(missing_ok=True)
    if not layout.zip.exists():
        partial = layout.zip.with_name(f".{layout.zip.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            archive.write(layout.csv, arcname=CSV_NAME)
        partial.rename(layout.zip)
    generated = time.perf_counter() - clock
    clock = time.perf_counter()
    layout.landing.parent.mkdir(parents=True, exist_ok=True)
    layout.landing.unlink(missing_ok=True)
    subprocess.run(
        gpg.cmd(
            "--trust-model",
            "always",
            "--recipient",
            gpg.fingerprint,
            "--output",
            str(layout.landing),
            "--encrypt",
            str(layout.zip),
        ),
        check=True,
        capture_output=True,
    )
    os.sync()  # write everything back now, not while the first tool is being timed
    return generated, time.perf_counter() - clock


def platform_env(**extra: str) -> dict[str, str]:
    """The environment of the platform's children (``process`` and ``platform checks``):
    ours, bytecode caching allowed, as ``bench/data_pipeline.py`` and ``bench/startup.py``
    give theirs. The editable packages are not compiled at install, as an image's wheels
    are, and a shell with ``PYTHONDONTWRITEBYTECODE`` had every run compile them again
    (0.15-0.2 s of a 1M ``process``, not a cost of the platform; the reference tools'
    packages come compiled). :func:`compile_platform` fills the cache first."""
    return harness.child_env(without=("PYTHONDONTWRITEBYTECODE",), **extra)


def reset_store(layout: Layout) -> None:
    """Remove every output and the ledger, and forget the landing object's cached ETag.

    Each run then finds the drop as a fresh delivery: no ``skipped`` as already done,
    and the ETag (MD5) is computed again, as for a file just dropped by a vendor.
    """
    for prefix in ("validated", "quarantine", "_state"):
        shutil.rmtree(layout.store / prefix, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.removexattr(layout.landing, "user.etl.md5")


# --------------------------------------------------------------------------- tools python


def tools_python() -> Path:
    """The reference tools' interpreter: ``$ETL_BENCH_TOOLS_PYTHON`` or .venv-bench's."""
    return harness.tools_python(DEFAULT_TOOLS_PYTHON)


# The module each tool needs in the tools python.
TOOL_MODULES = {
    DUCKDB: ("duckdb",),
    PANDERA: ("polars", "pandera.polars"),
    SODA: ("duckdb", "soda.scan", "soda.data_sources.duckdb_data_source"),
    GE: ("pandas", "great_expectations"),
}
TOOL_PACKAGES = {
    DUCKDB: "duckdb",
    PANDERA: "pandera[polars]",
    SODA: "soda-core-duckdb",
    GE: "great-expectations",
}


VERSIONED = ("duckdb", "polars", "pandera", "soda-core", "great-expectations", "pandas")


def probe_tools(python: Path) -> tuple[dict[str, str | None], str]:
    """Per tool: ``None`` when the tools python has it, else why it is skipped; and versions."""
    if not python.exists():
        why = f"{python} not found"
        return {
            tool: f"skipped: {TOOL_PACKAGES[tool]} not installed ({why}; make bench installs it)"
            for tool in TOOL_MODULES
        }, ""
    modules = sorted({m for mods in TOOL_MODULES.values() for m in mods})
    script = (
        "import importlib.metadata, importlib.util, json, platform, sys\n"
        "def has(name):\n"
        "    try:\n"
        "        return importlib.util.find_spec(name) is not None\n"
        "    except (ImportError, ValueError):\n"
        "        return False\n"
        "def version(name):\n"
        "    try:\n"
        "        return importlib.metadata.version(name)\n"
        "    except importlib.metadata.PackageNotFoundError:\n"
        "        return None\n"
        "found = {m: has(m) for m in sys.argv[1:]}\n"
        f"versions = {{p: version(p) for p in {list(VERSIONED)!r}}}\n"
        "versions['python'] = platform.python_version()\n"
        "print(json.dumps({'found': found, 'versions': versions}))\n"
    )
    done = subprocess.run(
        [str(python), "-c", script, *modules], capture_output=True, text=True, check=False
    )
    try:
        probe: dict[str, dict[str, Any]] = json.loads(done.stdout)
    except json.JSONDecodeError:
        probe = {}
    found = probe.get("found", {})
    versions = ", ".join(f"{k} {v}" for k, v in probe.get("versions", {}).items() if v)
    status: dict[str, str | None] = {}
    for tool, mods in TOOL_MODULES.items():
        missing = [m for m in mods if not found.get(m)]
        status[tool] = (
            f"skipped: {TOOL_PACKAGES[tool]} not installed (make bench installs it)"
            if missing
            else None
        )
    return status, versions


# --------------------------------------------------------------------------- the steps


def judge(result: Result, answer: dict[str, Any] | None, size: int) -> None:
    """Record the rows a checker saw; flag a wrong count or a failing check."""
    if answer is None:
        result.note = "no answer from the worker"
        return
    result.rows = int(answer.get("rows", 0))
    failing = {k: v for k, v in answer.get("checks", {}).items() if v}
    problems = []
    if result.rows != size:
        problems.append(f"{result.rows:,} rows, expected {size:,}")
    if failing:
        problems.append("failed: " + ", ".join(f"{k} {v}" for k, v in sorted(failing.items())))
    if problems:
        result.note = "! " + "; ".join(problems)


def bench_platform(layout: Layout, size: int, repeat: int, gpg: Gpg) -> Result:
    result = Result(size, PLATFORM)
    runs = []
    outcome: dict[str, Any] = {}
    # Per run: its own split (the JSON's duration, the quality report's), so the note pairs
    # the fastest run's wall time with that run's split, not with the last run's.
    splits: list[tuple[float, float | None]] = []
    for attempt in range(repeat):
        reset_store(layout)
        run = harness.run_child(
            platform_cmd(layout),
            name=f"platform-process-{attempt}",
            logs=layout.logs,
            cwd=layout.base,
            env=platform_env(**{KEY_ENV: gpg.secret_key}),
        )
        if run.returncode:
            return result.failed(run)
        answer = run.json_answer()
        if answer is None:
            result.note = "failed: `process --json` printed no JSON"
            result.detail = run.tail()
            return result
        outcome = answer
        if outcome.get("status") != "validated":
            result.note = (
                f"failed: status {outcome.get('status')!r}, reason {outcome.get('reason')}"
            )
            return result
        runs.append(run)
        reports = sorted((layout.store / "validated" / DATASET).rglob("*.quality.json"))
        quality = json.loads(reports[0].read_text()).get("duration_seconds") if reports else None
        splits.append((float(outcome.get("duration_seconds", 0.0)), quality))
    result.seconds, result.peak_rss_bytes = harness.best_of(runs)
    result.rows = int(outcome.get("rows", 0))
    if result.rows != size:
        result.note = f"! {result.rows:,} rows, expected {size:,}"
    fastest = min(range(len(runs)), key=lambda i: runs[i].seconds)
    inner, quality = splits[fastest]
    if inner:
        text = f"{PLATFORM}, {size:,} rows: {inner:.2f} s inside Processor.process (its JSON)"
        if quality is not None:
            text += (
                f", of which {quality:.2f} s in validate_file (its report) and "
                f"{inner - quality:.2f} s download, decrypt, unzip, publish and ledger"
            )
        text += (
            f"; {result.seconds - inner:.2f} s process start-up, contracts and exit (the fastest"
            f" run; its CPU, gpg included: {runs[fastest].cpu_seconds:.2f} s)"
        )
        result.startup_seconds = result.seconds - inner
        result.notes.append(text)
    return result


def platform_cmd(layout: Layout) -> list[str]:
    return [
        str(BIN / "etl-file-processing"),
        "--storage",
        layout.store.as_uri(),
        "--config-dir",
        str(CONFIG_DIR),
        "--log-format",
        "json",
        "process",
        LANDING_KEY,
        "--json",
    ]


def bench_floor(layout: Layout, size: int, repeat: int, gpg: Gpg) -> Result:
    result = Result(size, FLOOR)
    pipeline = f"{' '.join(_sh(a) for a in gpg.cmd('--decrypt', str(layout.landing)))} | funzip"
    runs = []
    for attempt in range(repeat):
        run = harness.run_child(
            ["bash", "-o", "pipefail", "-c", pipeline],
            name=f"floor-{attempt}",
            logs=layout.logs,
            cwd=layout.base,
            env=gpg.env(),
            stdout=Path(os.devnull),
        )
        if run.returncode:
            return result.failed(run)
        runs.append(run)
    result.seconds, result.peak_rss_bytes = harness.best_of(runs)
    result.round_seconds = [r.seconds for r in runs]
    result.rows = size
    result.notes.append(_cpu_note(FLOOR, size, runs, "gpg and funzip; gpg-agent not counted"))
    return result


def _cpu_note(tool: str, size: int, runs: list[harness.ChildRun], what: str) -> str:
    """The CPU seconds (user + system, waited-for children included) of the fastest run."""
    fastest = min(runs, key=lambda r: r.seconds)
    return f"{tool}, {size:,} rows: CPU {fastest.cpu_seconds:.2f} s in its fastest run ({what})"


def _sh(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def bench_worker(
    tool: str,
    kind: str,
    python: Path,
    layout: Layout,
    size: int,
    repeat: int,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run checker ``kind`` on the plain CSV in ``repeat`` children of ``python``."""
    result = Result(size, tool)
    spec = {"csv": str(layout.csv), "scratch": str(layout.scratch(kind))}
    runs = []
    for attempt in range(repeat):
        layout.scratch(kind)
        run = harness.run_child(
            harness.worker_cmd(python, __file__, kind, json.dumps(spec)),
            name=f"{kind}-{attempt}",
            logs=layout.logs,
            cwd=cwd or layout.base,
            env=env or harness.child_env(),
        )
        if run.returncode:
            return result.failed(run, 2)
        runs.append(run)
    result.seconds, result.peak_rss_bytes = harness.best_of(runs)
    result.round_seconds = [r.seconds for r in runs]
    answer = runs[-1].last_json()
    judge(result, answer, size)
    if tool == DUCKDB:  # the reference's second half: its CPU beside the platform's
        result.notes.append(_cpu_note(tool, size, runs, "interpreter start-up included"))
    inner = _inner_note(tool, size, runs)
    if inner is not None:
        result.notes.append(inner)
    return result


def _inner_note(tool: str, size: int, runs: list[harness.ChildRun]) -> str | None:
    """What the fastest run's answer says of its time inside the tool, if it says any: the
    line shows that run's wall time, so its split is that run's, not the last one's."""
    answer = min(runs, key=lambda r: r.seconds).last_json()
    if not answer or answer.get("inner_seconds") is None:
        return None
    return f"{tool}, {size:,} rows: {answer['inner_seconds']:.2f} s {answer.get('inner', '')}"


def soda_env(layout: Layout) -> dict[str, str]:
    """Soda Core writes ~/.soda/config.yml on import: give it a scratch HOME, telemetry off."""
    home = layout.base / "soda-home"
    (home / ".soda").mkdir(parents=True, exist_ok=True)
    (home / ".soda" / "config.yml").write_text(
        "send_anonymous_usage_stats: false\nuser_cookie_id: etl-bench\n"
    )
    return harness.child_env(HOME=str(home))


# --------------------------------------------------------------------------- workers


def duckdb_checks_sql(csv: str) -> str:
    """The check set as one DuckDB aggregate query over the CSV read as text."""
    q, lit = harness.sql_name, harness.sql_string
    columns = ", ".join(f"{lit(c)}: 'VARCHAR'" for c in COLUMNS)
    reader = f"read_csv({lit(csv)}, header = true, auto_detect = false, columns = {{{columns}}})"
    casts = ", ".join(f"TRY_CAST({q(c)} AS {t}) AS {q(c)}" for c, t in TYPES.items())
    raws = ", ".join(f"{q(c)} AS {q('raw_' + c)}" for c in TYPES)
    exprs = ["count(*) AS rows"]
    exprs += [
        f"count_if({q('raw_' + c)} IS NOT NULL AND {q(c)} IS NULL) AS {q('type:' + c)}"
        for c in TYPES
    ]
    exprs += [f"count_if({q(c)} IS NULL) AS {q('not_null:' + c)}" for c in REQUIRED]
    exprs.append(f"count({q(UNIQUE)}) - count(DISTINCT {q(UNIQUE)}) AS {q('unique:' + UNIQUE)}")
    exprs += [
        f"count_if({q(c)} < {lo} OR {q(c)} > {hi}) AS {q('range:' + c)}"
        for c, (lo, hi) in RANGES.items()
    ]
    exprs += [
        f"count_if({q(c)} NOT IN ({', '.join(lit(v) for v in values)})) AS {q('allowed:' + c)}"
        for c, values in ALLOWED.items()
    ]
    column, pattern = REGEX
    exprs.append(
        f"count_if(NOT regexp_full_match({q(column)}, {lit(pattern)})) AS {q('regex:' + column)}"
    )
    exprs.append(f"count_if(NOT ({STORE_CHECK[1]})) AS {q(STORE_CHECK[0])}")
    exprs.append(f"count_if(NOT ({WARN_CHECK[1]})) AS {q('warn:' + WARN_CHECK[0])}")
    return f"SELECT {', '.join(exprs)} FROM (SELECT * REPLACE ({casts}), {raws} FROM {reader}) AS t"


def answer(rows: int, checks: dict[str, int], warn: dict[str, int], **extra: Any) -> int:
    """Print a worker's result as one JSON line; row_count is judged here for every tool."""
    checks = dict(checks)
    checks.setdefault("row_count", int(not ROW_COUNT[0] <= rows <= ROW_COUNT[1]))
    print(json.dumps({"rows": rows, "checks": checks, "warn": warn, **extra}))
    return 0


def worker_duckdb(spec: dict[str, Any]) -> int:
    """Child: the hand-written aggregate query, in-memory DuckDB, default settings."""
    import duckdb

    cursor = duckdb.connect().execute(duckdb_checks_sql(spec["csv"]))
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    assert row is not None
    values = dict(zip(names, row, strict=True))
    rows = int(values.pop("rows"))
    warn = {k[5:]: int(v) for k, v in values.items() if k.startswith("warn:")}
    checks = {k: int(v) for k, v in values.items() if not k.startswith("warn:")}
    return answer(rows, checks, warn, duckdb=duckdb.__version__)


def worker_quality(spec: dict[str, Any], top_values: int | None = None) -> int:
    """Child (main venv): the platform's quality engine on the plain CSV."""
    from etl_core.contracts import load_contracts
    from file_processing.quality import QualitySettings, validate_file

    contract = load_contracts(CONFIG_DIR).get(DATASET)
    settings = QualitySettings() if top_values is None else QualitySettings(top_values=top_values)
    result = validate_file(spec["csv"], contract, out_dir=spec["scratch"], settings=settings)
    report = result.report
    checks = {c.name: c.failed_count for c in report.checks if c.severity == "error"}
    warn = {c.name: c.failed_count for c in report.checks if c.severity != "error"}
    if report.outcome != "pass":
        checks["outcome"] = 1
    return answer(
        report.rows.total,
        checks,
        warn,
        inner_seconds=report.duration_seconds,
        inner="inside validate_file (its report)",
    )


def worker_pandera(spec: dict[str, Any]) -> int:
    """Child: pandera's Polars backend; the CSV read by Polars with the contract's types."""
    import pandera.polars as pa  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only
    import polars as pl  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only
    from pandera.errors import SchemaErrors  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only

    typed: dict[str, Any] = {
        "sold_at": pl.Datetime("us"),
        "quantity": pl.Int64,
        "unit_price": pl.Decimal(12, 2),
        "discount": pl.Decimal(4, 2),
        "loyalty_member": pl.Boolean,
    }
    dtypes = {c: typed.get(c, pl.String) for c in COLUMNS}
    checks: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for c, (lo, hi) in RANGES.items():
        checks[c].append(pa.Check.in_range(lo, hi))
    for c, values in ALLOWED.items():
        checks[c].append(pa.Check.isin(list(values)))
    checks[REGEX[0]].append(pa.Check.str_matches(f"^{REGEX[1]}$"))

    def store_matches_register(data: Any) -> Any:
        prefix = pl.col("store_id") + "-"
        return data.lazyframe.select(pl.col("register_id").str.starts_with(prefix).fill_null(True))

    def member_has_customer_id(data: Any) -> Any:
        member = pl.col("loyalty_member").fill_null(False)
        return data.lazyframe.select(~member | pl.col("customer_id").is_not_null())

    def row_count(data: Any) -> Any:
        return data.lazyframe.select(pl.len().is_between(*ROW_COUNT))

    schema = pa.DataFrameSchema(
        {
            c: pa.Column(
                dtypes[c], checks[c], nullable=c not in REQUIRED, unique=c == UNIQUE, required=True
            )
            for c in COLUMNS
        },
        checks=[
            pa.Check(store_matches_register, name=STORE_CHECK[0]),
            pa.Check(member_has_customer_id, name=WARN_CHECK[0], raise_warning=True),
            pa.Check(row_count, name="row_count"),
        ],
        strict=True,
    )
    clock = time.perf_counter()
    frame = pl.read_csv(spec["csv"], schema=dtypes)
    read = time.perf_counter() - clock
    failures: dict[str, int] = {}
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as exc:
            for check in exc.failure_cases["check"].to_list():
                failures[str(check)] = failures.get(str(check), 0) + 1
    # A raise_warning check that fails warns (its message names the check) instead of raising.
    warn = {WARN_CHECK[0]: sum(WARN_CHECK[0] in str(w.message) for w in warned)}
    return answer(
        frame.height,
        failures,
        warn,
        inner_seconds=read,
        inner="of it reading the CSV into a Polars DataFrame (pl.read_csv)",
    )


def soda_checks_yaml() -> str:
    """The check set as SodaCL over the view ``pos``."""
    lines = ["checks for pos:", f"  - row_count between {ROW_COUNT[0]} and {ROW_COUNT[1]}"]
    lines.append("  - schema:")
    lines.append("      fail:")
    lines.append("        when wrong column type:")
    lines += [f"          {c}: {t.lower()}" for c, t in TYPES.items()]
    lines.append(f"  - duplicate_count({UNIQUE}) = 0")
    lines += [f"  - missing_count({c}) = 0" for c in REQUIRED]
    for c, (lo, hi) in RANGES.items():
        lines += [
            f"  - invalid_count({c}) = 0:",
            f"      valid min: {lo}",
            f"      valid max: {hi}",
        ]
    for c, values in ALLOWED.items():
        lines += [f"  - invalid_count({c}) = 0:", f"      valid values: [{', '.join(values)}]"]
    column, pattern = REGEX
    lines += [f"  - invalid_count({column}) = 0:", f"      valid regex: ^{pattern}$"]
    name, expression = STORE_CHECK
    lines += [
        f"  - {name} = 0:",
        f'      {name} expression: "count_if(NOT ({expression}))"',
    ]
    name, expression = WARN_CHECK
    lines += [
        f"  - {name}:",
        f'      {name} expression: "count_if(NOT ({expression}))"',
        "      warn: when > 0",
    ]
    return "\n".join(lines) + "\n"


def worker_soda(spec: dict[str, Any]) -> int:
    """Child: Soda Core scan over a DuckDB view of the CSV, read with the contract's types."""
    import duckdb
    from soda.scan import Scan  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only

    columns = ", ".join(f"'{c}': '{TYPES.get(c, 'VARCHAR')}'" for c in COLUMNS)
    path = spec["csv"].replace("'", "''")
    connection = duckdb.connect()
    connection.execute(
        "CREATE VIEW pos AS SELECT * FROM "
        f"read_csv('{path}', header = true, auto_detect = false, columns = {{{columns}}})"
    )
    scan = Scan()
    scan.disable_telemetry()
    scan.set_data_source_name("duckdb")
    scan.add_duckdb_connection(connection, "duckdb")
    scan.add_sodacl_yaml_str(soda_checks_yaml())
    scan.execute()
    if scan.has_error_logs():
        print(scan.get_error_logs_text(), file=sys.stderr)
        return 1
    results = scan.get_scan_results()
    rows = -1
    checks: dict[str, int] = {}
    warn: dict[str, int] = {}
    for check in results.get("checks", []):
        name = str(check.get("name"))
        value = (check.get("diagnostics") or {}).get("value")
        if name.startswith("row_count"):
            rows = int(value or 0)
        outcome = check.get("outcome")
        if outcome == "warn":
            warn[name] = int(value or 1)
        elif outcome != "pass":
            checks[name] = int(value or 1)
    return answer(rows, checks, warn, checks_run=len(results.get("checks", [])))


def worker_ge(spec: dict[str, Any]) -> int:
    """Child: Great Expectations Core 1.x, ephemeral context, a pandas dataframe asset."""
    import great_expectations as gx  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only
    import great_expectations.expectations as gxe  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only
    import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]

    clock = time.perf_counter()
    frame = pd.read_csv(
        spec["csv"],
        dtype={
            **{c: "string" for c in COLUMNS if c not in TYPES},
            "quantity": "Int64",
            "unit_price": "float64",  # pandas has no decimal dtype (short of pyarrow)
            "discount": "float64",
            "loyalty_member": "boolean",
        },
        parse_dates=["sold_at"],
        date_format="ISO8601",
    )
    # starts_with(register_id, store_id || '-') as a column pair: the register's store prefix.
    frame["register_store"] = frame["register_id"].str.split("-", n=1).str[0]
    read = time.perf_counter() - clock

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("bench").add_dataframe_asset(DATASET)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    suite = context.suites.add(gx.ExpectationSuite(name=DATASET))
    # For pandas extension dtypes GX compares the dtype's class name (Int64Dtype), not "Int64".
    type_lists = {
        "sold_at": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"],
        "quantity": ["Int64Dtype"],
        "unit_price": ["float64"],
        "discount": ["float64"],
        "loyalty_member": ["BooleanDtype"],
    }
    for c, types in type_lists.items():
        suite.add_expectation(gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=types))
    for c in REQUIRED:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=UNIQUE))
    for c, (lo, hi) in RANGES.items():
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
        )
    for c, values in ALLOWED.items():
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=list(values)))
    suite.add_expectation(
        gxe.ExpectColumnValuesToMatchRegex(column=REGEX[0], regex=f"^{REGEX[1]}$")
    )
    suite.add_expectation(
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="store_id",
            column_B="register_store",
            ignore_row_if="either_value_is_missing",
        )
    )
    suite.add_expectation(
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id",
            row_condition="loyalty_member == True",
            condition_parser="pandas",
            severity="warning",
        )
    )
    suite.add_expectation(
        gxe.ExpectTableRowCountToBeBetween(min_value=ROW_COUNT[0], max_value=ROW_COUNT[1])
    )
    validation = batch.validate(suite)
    checks: dict[str, int] = {}
    warn: dict[str, int] = {}
    for item in validation.results:
        config = item.expectation_config
        kwargs = config.kwargs
        name = f"{config.type}:{kwargs.get('column') or kwargs.get('column_A') or ''}"
        failed = 0 if item.success else int(item.result.get("unexpected_count") or 1)
        if item.exception_info and item.exception_info.get("raised_exception"):
            failed = failed or 1
            print(f"{name}: {item.exception_info.get('exception_message')}", file=sys.stderr)
        if str(getattr(config, "severity", "")).lower().endswith("warning"):
            warn[name] = failed
        else:
            checks[name] = failed
    return answer(
        len(frame),
        checks,
        warn,
        expectations=len(validation.results),
        inner_seconds=read,
        inner="of it reading the CSV into pandas (read_csv, register prefix)",
    )


WORKERS: dict[str, Callable[[dict[str, Any]], int]] = {
    "duckdb": worker_duckdb,
    "quality": worker_quality,
    "quality_lean": lambda spec: worker_quality(spec, top_values=0),
    "pandera": worker_pandera,
    "soda": worker_soda,
    "ge": worker_ge,
}


def worker(argv: list[str]) -> int:
    """Entry of the checker child processes: ``--worker KIND SPEC_JSON``."""
    kind, spec = argv
    return WORKERS[kind](json.loads(spec))


# --------------------------------------------------------------------------- profile


PROFILED = (
    ("file_processing/cli.py", "_processor"),
    ("etl_core/storage/local.py", "head"),
    ("file_processing/process.py", "_download"),
    ("file_processing/process.py", "_decryptor"),
    ("file_processing/decrypt.py", "decrypt"),
    ("file_processing/archives/zip.py", "members"),
    ("file_processing/quality.py", "validate_file"),
    ("file_processing/prescan.py", "prescan"),
    ("file_processing/quality.py", "_connect"),
    ("file_processing/quality.py", "_aggregate"),
    ("file_processing/quality.py", "_unique"),
    ("file_processing/quality.py", "_row_checks"),
    ("file_processing/process.py", "_check_members"),
    ("file_processing/process.py", "_publish"),
    ("file_processing/process.py", "_upload"),
    ("file_processing/ledger.py", "claim"),
    ("file_processing/ledger.py", "finish"),
    ("file_processing/decrypt.py", "close"),
    ("file_processing/process.py", "process"),
)


def profile_platform(layout: Layout, size: int, gpg: Gpg) -> list[str]:
    """Run ``process`` once more under cProfile; cumulative seconds per step of the code."""
    reset_store(layout)
    lines, _ = harness.profile_child(
        platform_cmd(layout),
        PROFILED,
        title=f"profile of {PLATFORM}, {size:,} rows",
        width=32,
        prof=layout.base / "platform-process.prof",
        name="platform-process-profile",
        logs=layout.logs,
        cwd=layout.base,
        env=platform_env(**{KEY_ENV: gpg.secret_key}),
    )
    return lines


# --------------------------------------------------------------------------- report


def combined(floor: Result | None, duck: Result | None, size: int) -> Result:
    """``floor + duckdb checks``: the two back to back (seconds add, RSS is the larger).

    Its seconds are the fastest of the repeats' sums (the floor's n-th run plus the checks'
    n-th), as the platform's are the fastest of its whole runs: the sum of each half's own
    fastest run picked the luck of two draws against the platform's one.
    """
    result = Result(size, FLOOR_DUCKDB, rows=size)
    if floor and duck and floor.ok and duck.ok:
        assert floor.seconds is not None
        assert duck.seconds is not None
        result.seconds = floor.seconds + duck.seconds
        if floor.round_seconds and len(floor.round_seconds) == len(duck.round_seconds):
            sums = [f + d for f, d in zip(floor.round_seconds, duck.round_seconds, strict=True)]
            result.seconds = min(sums)
            result.notes.append(
                f"{FLOOR_DUCKDB}, {size:,} rows: fastest of the repeats' sums "
                f"{result.seconds:.2f} s (each half's fastest added: "
                f"{floor.seconds + duck.seconds:.2f} s)"
            )
        result.peak_rss_bytes = max(floor.peak_rss_bytes or 0, duck.peak_rss_bytes or 0)
    else:
        result.note = "not measured (a part failed or was skipped)"
    return result


def report(results: list[Result], csv_bytes: dict[int, int]) -> list[str]:
    """One table per size: seconds, MB/s and rows/s of the plain CSV, peak RSS, vs DuckDB."""
    _fmt = harness.fmt
    header = (
        f"{'tool':<30} {'seconds':>8} {'MB/s':>7} {'rows/s':>11} {'peak RSS MB':>11} "
        f"{'vs duckdb':>9}  note"
    )
    lines = []
    for size in sorted({r.size for r in results}):
        lines.append(f"{size:,} rows, plain CSV {csv_bytes[size] / MB:,.1f} MB")
        lines += [header, "-" * len(header)]
        duck = next((r for r in results if r.size == size and r.tool == DUCKDB and r.ok), None)
        for r in (r for r in results if r.size == size):
            if not r.ok:
                lines.append(
                    f"{r.tool:<30} {'-':>8} {'-':>7} {'-':>11} {'-':>11} {'-':>9}  {r.note}"
                )
                continue
            assert r.seconds is not None
            ratio = r.seconds / duck.seconds if duck and duck.seconds else None
            lines.append(
                f"{r.tool:<30} {r.seconds:>8.2f} {csv_bytes[size] / MB / r.seconds:>7.1f} "
                f"{size / r.seconds:>11,.0f} {_fmt(r.peak_rss_mb, '.0f'):>11} "
                f"{_fmt(ratio, '.2f') + 'x' if ratio else '-':>9}  {r.note}".rstrip()
            )
        lines.append("")
    return lines


def targets(results: list[Result]) -> tuple[list[str], bool]:
    """Whether the targets are met; returns the lines and whether all measured ones are."""
    verdict = harness.Verdicts()
    lines = verdict.lines
    for size in sorted({r.size for r in results}):
        by_tool = {r.tool: r for r in results if r.size == size and r.ok}
        platform, both = by_tool.get(PLATFORM), by_tool.get(FLOOR_DUCKDB)
        if platform and both and platform.seconds and both.seconds:
            share = both.seconds / platform.seconds
            lines.append(
                f"  {verdict(share >= MIN_THROUGHPUT_VS_FLOOR_DUCKDB)} end to end at least "
                f"{MIN_THROUGHPUT_VS_FLOOR_DUCKDB}x the throughput of floor + DuckDB checks at "
                f"{size:,} rows: {share:.2f}x ({platform.seconds:.2f} s vs {both.seconds:.2f} s)"
            )
        else:
            lines.append(f"  n/a    end to end vs floor + DuckDB at {size:,} rows: not measured")
        if platform:
            verdict.startup(platform, "`process`")
        quality = by_tool.get(QUALITY)
        for tool in THIRD_PARTY:
            other = by_tool.get(tool)
            if quality and other and quality.seconds and other.seconds:
                lines.append(
                    f"  {verdict(quality.seconds < other.seconds)} checks alone faster than "
                    f"{tool} at {size:,} rows: {quality.seconds:.2f} s vs {other.seconds:.2f} s "
                    f"({other.seconds / quality.seconds:.1f}x)"
                )
    big = [r for r in results if r.tool == PLATFORM and r.ok and r.size >= RSS_TARGET_ROWS]
    for r in big:
        assert r.peak_rss_mb is not None
        lines.append(
            f"  {verdict(r.peak_rss_mb < MAX_RSS_MB)} peak RSS of `process` under {MAX_RSS_MB} MB "
            f"at {r.size:,} rows: {r.peak_rss_mb:.0f} MB"
        )
    if not big:
        verdict.rss_not_measured(f"{MAX_RSS_MB} MB", RSS_TARGET_ROWS)
    return lines, verdict.all_met


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = harness.arg_parser(
        "bench/run.py file_processing",
        "Benchmark etl-file-processing on an encrypted, zipped retail drop.",
        rows="sizes to generate",
        workdir="CSVs and zips",
    )
    parser.add_argument(
        "--all-tools-sizes",
        action="store_true",
        help="run pandera, Soda and Great Expectations at every size (default: the smallest)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run `process` under cProfile and print seconds per step",
    )
    return harness.parse_args(parser, argv)


def main(argv: list[str]) -> int:
    """Generate, run every tool for every size, print the report; 0 unless a run failed."""
    args = parse_args(argv)
    for tool in ("gpg", "gpgconf", "funzip", "bash"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: the benchmark needs gpg and funzip (unzip)", file=sys.stderr)
            return 2
    if harness.missing_entry_point("etl-file-processing"):
        return 2
    with harness.workdir(args.workdir) as workdir:
        gpg: Gpg | None = None
        try:
            gpg = make_key()
            return _run(args, workdir, gpg)
        except subprocess.CalledProcessError as exc:  # gpg could not make the key or the drop
            stderr = (
                exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
            )
            print(f"{' '.join(map(str, exc.cmd[:6]))} ... failed: {stderr or exc}", file=sys.stderr)
            return 1
        finally:
            if gpg is not None:
                drop_key(gpg)


def _run(args: argparse.Namespace, workdir: Path, gpg: Gpg) -> int:
    python = tools_python()
    harness.print_header("file_processing", args, workdir)
    print(f"  reference tools: {python}")
    harness.print_settings()
    for line in contract_drift():
        print(f"  ! the contract changed, the reference tools do not check it: {line}")
    status, versions = probe_tools(python)
    if versions:
        print(f"  versions there: {versions}")
    for tool, why in status.items():
        if why is not None:
            print(f"  {tool}: {why}")
    duck_python = python if status[DUCKDB] is None else Path(sys.executable)
    if duck_python != python:
        print(f"  {DUCKDB}: using the main venv's duckdb ({duck_python})")

    harness.compile_platform(platform_env())
    print("  bytecode: the packages compiled first and cached (PYTHONDONTWRITEBYTECODE dropped)")
    step = harness.step
    results: list[Result] = []
    csv_bytes: dict[int, int] = {}
    notes: list[str] = []
    for size in args.rows:
        layout = Layout(workdir / f"rows-{size}")
        print(f"\n{size:,} rows: generating ...", end=" ", flush=True)
        generated, encrypted = prepare(layout, size, gpg)
        csv_bytes[size] = layout.csv.stat().st_size
        print(
            f"{csv_bytes[size] / MB:,.1f} MB CSV, {layout.zip.stat().st_size / MB:,.1f} MB zip, "
            f"{layout.landing.stat().st_size / MB:,.1f} MB encrypted "
            f"({generated:.1f} s + {encrypted:.1f} s)",
            flush=True,
        )
        batch = [
            step(PLATFORM, bench_platform, layout, size, args.repeat, gpg),
            step(FLOOR, bench_floor, layout, size, args.repeat, gpg),
        ]
        duck = step(DUCKDB, bench_worker, DUCKDB, "duckdb", duck_python, layout, size, args.repeat)
        batch += [duck, combined(batch[1], duck, size)]
        batch.append(
            step(
                QUALITY,
                bench_worker,
                QUALITY,
                "quality",
                Path(sys.executable),
                layout,
                size,
                args.repeat,
                env=platform_env(),
            )
        )
        batch.append(
            step(
                QUALITY_LEAN,
                bench_worker,
                QUALITY_LEAN,
                "quality_lean",
                Path(sys.executable),
                layout,
                size,
                args.repeat,
                env=platform_env(),
            )
        )
        third_party = args.all_tools_sizes or size == args.rows[0]
        for tool, kind in ((PANDERA, "pandera"), (SODA, "soda"), (GE, "ge")):
            why = status[tool]
            if why is None and not third_party:
                why = "skipped: smallest size only (--all-tools-sizes runs it here)"
            if why is not None:
                batch.append(Result(size, tool, note=why))
                continue
            extra: dict[str, Any] = {}
            if tool == SODA:
                extra["env"] = soda_env(layout)
            if tool == GE:
                extra["env"] = harness.child_env(GX_ANALYTICS_ENABLED="false")
            batch.append(
                step(tool, bench_worker, tool, kind, python, layout, size, args.repeat, **extra)
            )
        results += batch
        if args.profile and batch[0].ok:
            print("  profiling the platform ...", flush=True)
            notes.extend(profile_platform(layout, size, gpg))
        notes.extend(note for r in batch for note in r.notes)

    lines, all_met = targets(results)
    harness.print_report(report(results, csv_bytes), notes, lines)
    failed = any(
        (not r.ok and not r.note.startswith(("skipped", "not measured"))) or r.note.startswith("!")
        for r in results
    )
    if failed:
        return 1
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        raise SystemExit(worker(sys.argv[2:]))
    raise SystemExit(main(sys.argv[1:]))
