"""What the benchmarks of this directory share: child runs, result rows, report, options.

Each benchmark loads this file by path as ``bench_harness`` (``bench/`` is off
``sys.path``, see run.py), with a few lines at its top that also serve a direct
``python bench/<name>.py`` run and the ``--worker`` children, some of which run under
the reference tools' interpreter: standard library only at import time, as they are.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "retail"
CONFIG_DIR = EXAMPLE / "config"
DATASET = "pos_transactions"
DAY = date(2026, 11, 2)
DEFAULT_ROWS = (1_000_000, 5_000_000)
BIN = Path(sys.executable).parent  # the main venv's bin/ (not resolved: it holds the entry points)
# The reference tools run under this interpreter: `make bench` points it at .venv-bench,
# where they are installed without touching .venv.
TOOLS_PYTHON_ENV = "ETL_BENCH_TOOLS_PYTHON"
MIB = 1024 * 1024
MB = 1_000_000
MAX_STARTUP_SECONDS = 0.25  # a CLI run's overhead around its work (issue 16, "Start-up")


# --------------------------------------------------------------------------- measuring


@dataclass
class ChildRun:
    """One child process: exit code, wall seconds, peak RSS and its output files."""

    returncode: int
    seconds: float
    peak_rss_bytes: int
    stdout: Path
    stderr: Path
    cpu_seconds: float = 0.0
    """User plus system CPU time of the child (and the descendants it waited for)."""

    def tail(self, lines: int = 15) -> str:
        """The last lines of the child's stderr (then stdout), for error messages."""
        text = self.stderr.read_text(errors="replace") or self.stdout.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines of the child's stderr whose ``event`` is ``event``."""
        return [
            record
            for record in _json_objects(self.stderr.read_text(errors="replace").splitlines())
            if record.get("event") == event
        ]

    def json_answer(self) -> dict[str, Any] | None:
        """Stdout as one JSON object (``process --json`` prints one, indented), else ``None``."""
        try:
            value = json.loads(self.stdout.read_text(errors="replace"))
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def last_json(self) -> dict[str, Any] | None:
        """The last line of stdout that is a JSON object (a worker's answer)."""
        lines = reversed(self.stdout.read_text(errors="replace").splitlines())
        return next(_json_objects(lines), None)


def _json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The lines that are JSON objects, parsed; the others are passed over."""
    for line in lines:
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                yield value


def run_child(
    cmd: Sequence[str],
    *,
    name: str,
    logs: Path,
    cwd: Path,
    env: dict[str, str],
    stdout: Path | None = None,
) -> ChildRun:
    """Run ``cmd`` to completion; wall time and peak RSS are the child's alone (wait4).

    Its output goes to ``<logs>/<name>.stdout`` (or ``stdout``) and ``.stderr``.
    ``ru_maxrss`` of ``wait4`` covers the child and the descendants it waited for
    (gpg under the platform, both ends of a shell pipe): the largest of them.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out_path = stdout or logs / f"{name}.stdout"
    err_path = logs / f"{name}.stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # Linux reports ru_maxrss in KiB.
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(proc.returncode, seconds, usage.ru_maxrss * 1024, out_path, err_path, cpu)


def best_of(runs: list[ChildRun]) -> tuple[float, int]:
    """Fastest wall time and highest peak RSS (bytes) over the repeats."""
    return min(r.seconds for r in runs), max(r.peak_rss_bytes for r in runs)


def child_env(*, without: Sequence[str] = (), **extra: str) -> dict[str, str]:
    """The environment of a child: ours, less the variables ``without``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in without}
    env.update(extra)
    return env


def compile_platform(env: Mapping[str, str]) -> None:
    """Byte-compile the workspace's packages (untimed), so that no timed run compiles them:
    the editable packages are not compiled at install, as an image's wheels are."""
    sources = [*sorted(ROOT.glob("packages/*/src")), *sorted(ROOT.glob("external/*/src"))]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *map(str, sources)],
        check=True,
        env=dict(env),
        stdout=subprocess.DEVNULL,
    )


def worker_cmd(python: Path, script: str, kind: str, arg: str) -> list[str]:
    """``python script --worker kind arg``: a benchmark module run as its own child."""
    return [str(python), str(Path(script).resolve()), "--worker", kind, arg]


def tools_python(default: Path) -> Path:
    """The reference tools' interpreter: ``$ETL_BENCH_TOOLS_PYTHON``, else ``default``.

    Made absolute (not resolved: a venv's python is a symlink), as the tools run in
    other directories; a bare name is looked up on ``PATH``.
    """
    given = os.environ.get(TOOLS_PYTHON_ENV)
    if not given:
        return default
    if os.sep in given:
        return Path(os.path.abspath(given))
    return Path(shutil.which(given) or given)


@dataclass
class Result:
    """One line of the report."""

    size: int
    tool: str
    rows: int | None = None
    seconds: float | None = None
    peak_rss_bytes: int | None = None
    output_bytes: int | None = None
    cpu_seconds: float | None = None
    note: str = ""
    """Why there is no measurement (skipped, failed), or what is off about it."""
    detail: str = ""
    """The end of a failed child's output."""
    notes: list[str] = field(default_factory=list)
    startup_seconds: float | None = None
    """A platform CLI run's wall time less the time its work reports: start-up and exit."""
    round_seconds: list[float] = field(default_factory=list)
    """Every repeat's wall time, in order (``seconds`` is their minimum), where kept."""

    @property
    def ok(self) -> bool:
        return self.seconds is not None

    @property
    def peak_rss_mib(self) -> float | None:
        return None if self.peak_rss_bytes is None else self.peak_rss_bytes / MIB

    @property
    def peak_rss_mb(self) -> float | None:
        return None if self.peak_rss_bytes is None else self.peak_rss_bytes / MB

    def timed(self, run: ChildRun) -> Result:
        """This result with ``run``'s wall time and peak RSS, or marked failed by it."""
        if run.returncode:
            return self.failed(run)
        self.seconds, self.peak_rss_bytes = run.seconds, run.peak_rss_bytes
        self.cpu_seconds = run.cpu_seconds
        return self

    def failed(self, run: ChildRun, lines: int = 3) -> Result:
        """This result, marked failed by ``run``: its exit code and output's end."""
        self.note = f"failed (exit {run.returncode}): {run.tail(lines)}"
        self.detail = run.tail()
        return self


def profile_child(
    cmd: Sequence[str],
    profiled: Sequence[tuple[str, str]],
    *,
    title: str,
    width: int,
    under: str = "",
    prof: Path,
    name: str,
    logs: Path,
    cwd: Path,
    env: dict[str, str],
) -> tuple[list[str], dict[tuple[str, str], float]]:
    """Run ``cmd`` under cProfile; the report lines and cumulative seconds per function.

    ``profiled`` names ``(file, function)`` pairs, a file matched as the end of
    ``under + file``; the lines are ``title``, then one per function found.
    """
    import pstats

    run = run_child(
        [sys.executable, "-m", "cProfile", "-o", str(prof), *cmd],
        name=name,
        logs=logs,
        cwd=cwd,
        env=env,
    )
    if run.returncode:
        return [f"profile run failed (exit {run.returncode}): {run.tail(3)}"], {}
    stats: dict[tuple[str, int, str], Any] = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
    seconds: dict[tuple[str, str], float] = {}
    for (path, _, function), (_, _, _, cumulative, _) in stats.items():
        for file, func in profiled:
            if function == func and path.endswith(under + file):
                seconds[file, func] = seconds.get((file, func), 0.0) + cumulative
    lines = [f"{title} (cProfile, wall {run.seconds:.2f} s):"]
    for file, func in profiled:
        if (file, func) in seconds:
            label = f"{Path(file).stem}.{func}"
            lines.append(f"  {label:<{width}} {seconds[file, func]:7.2f} s cumulative")
    return lines, seconds


# --------------------------------------------------------------------------- data


@functools.cache
def generator() -> Any:
    """examples/retail/generate.py, imported from its path."""
    path = EXAMPLE / "generate.py"
    spec = importlib.util.spec_from_file_location("retail_generate", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_csv(csv: Path, rows: int) -> bool:
    """Generate ``rows`` transactions of :data:`DAY` into ``csv`` unless it is there.

    Written under a temporary name, so it exists only whole; returns whether it was written.
    """
    if csv.exists():
        return False
    csv.parent.mkdir(parents=True, exist_ok=True)
    partial = csv.with_name(f".{csv.name}.partial")
    with partial.open("w", newline="") as out:
        generator().write_transactions(out, DAY, rows)
    partial.rename(csv)
    return True


@dataclass(frozen=True)
class Layout:
    """The scratch files of one size: a local store and the children's output."""

    base: Path

    @property
    def store(self) -> Path:
        return self.base / "store"

    @property
    def logs(self) -> Path:
        return self.base / "logs"


def sql_name(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class Verdicts:
    """The ``targets:`` lines, and whether every measured target is met."""

    def __init__(self) -> None:
        self.lines = ["targets:"]
        self.all_met = True

    def __call__(self, met: bool) -> str:
        """``MET`` or ``MISSED``, padded, for a target's line; a miss is remembered."""
        self.all_met &= met
        return "MET   " if met else "MISSED"

    def startup(self, result: Result, command: str) -> None:
        """The line of the start-up target: ``command``'s overhead in ``result``."""
        if result.startup_seconds is None:
            self.lines.append(f"  n/a    {command} start-up: not measured")
            return
        self.lines.append(
            f"  {self(result.startup_seconds < MAX_STARTUP_SECONDS)} {command} start-up, "
            f"contracts and exit under {MAX_STARTUP_SECONDS} s at {result.size:,} rows: "
            f"{result.startup_seconds:.2f} s (bench/run.py startup measures it on a tiny input)"
        )

    def rss_not_measured(self, limit: str, rows: int) -> None:
        """The line of an RSS target (``limit``) that only a run of ``rows`` or more measures."""
        self.lines.append(
            f"  n/a    peak RSS under {limit}: needs a run with --rows {rows} or more"
        )


def step(tool: str, bench: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """Run one benchmark step, printing its progress and a failed child's output."""
    print(f"  {tool} ...", end=" ", flush=True)
    result = bench(*args, **kwargs)
    print(f"{result.seconds:.2f} s" if result.ok else "FAILED", flush=True)
    if result.note.startswith("!"):
        print(f"    {result.note}", flush=True)
    if result.detail:
        print("    " + result.detail.replace("\n", "\n    "), file=sys.stderr, flush=True)
    return result


Step = tuple[str, Callable[..., "Result"], tuple[Any, ...], dict[str, Any]]
"""A tool's name, its benchmark function, and the arguments to call it with."""


def interleaved(rounds: int, steps: Sequence[Step]) -> list[Result]:
    """Run every step once per round, round after round; each step's fastest run.

    Interleaving spreads a shared machine's drift over every tool alike, where one
    tool's repeats run back to back would hand a quiet (or busy) minute to one tool.
    """
    runs: dict[str, list[Result]] = {name: [] for name, *_ in steps}
    for _ in range(rounds):
        for name, bench, args, kwargs in steps:
            runs[name].append(step(name, bench, *args, **kwargs))
    return [fastest(results) for results in runs.values()]


def fastest(results: Sequence[Result]) -> Result:
    """The fastest of a tool's runs, with the highest peak RSS of them; a failure wins."""
    failed = [r for r in results if not r.ok]
    if failed:
        return failed[0]
    best = min(results, key=lambda r: r.seconds or 0.0)
    peaks = [r.peak_rss_bytes for r in results if r.peak_rss_bytes is not None]
    return replace(best, peak_rss_bytes=max(peaks) if peaks else None)


def print_header(benchmark: str, args: argparse.Namespace, workdir: Path) -> None:
    """The report's first line: the benchmark, its sizes, the CPUs, the workdir, repeats."""
    print(
        f"{benchmark} benchmark: {', '.join(f'{n:,}' for n in args.rows)} rows, "
        f"{os.cpu_count()} CPUs, workdir {workdir}"
        + (f", repeat {args.repeat} (fastest kept)" if args.repeat > 1 else "")
    )


def print_settings() -> None:
    """The platform's ``ETL_`` settings in the environment, if there are any."""
    settings = {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("ETL_") and k != TOOLS_PYTHON_ENV
    }
    if settings:
        print(f"  platform settings from the environment: {settings}")


def print_report(table: list[str], notes: list[str], targets: list[str]) -> None:
    print()
    for line in [*table, *notes, "", *targets]:
        print(line)


# --------------------------------------------------------------------------- main


def arg_parser(prog: str, description: str, *, rows: str, workdir: str) -> argparse.ArgumentParser:
    """A benchmark's parser with ``--rows``, ``--workdir`` and ``--repeat``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=list(DEFAULT_ROWS),
        metavar="N",
        help=f"{rows} (default: %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help=f"scratch directory, kept afterwards; generated {workdir} in it are reused "
        "(default: a temporary directory, removed afterwards)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="runs of each tool per size; the fastest wall time is reported (default: 1)",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Add ``--strict`` last, parse, check ``--rows`` and ``--repeat``, sort the sizes."""
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a measured target is missed (default: report only)",
    )
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.rows) or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    args.rows = sorted(set(args.rows))
    return args


def missing_entry_point(name: str) -> bool:
    """Whether the main venv lacks the platform's command ``name`` (then says so)."""
    if (BIN / name).exists():
        return False
    print(f"{BIN / name} not found: run `make install` first", file=sys.stderr)
    return True


@contextmanager
def workdir(given: Path | None) -> Iterator[Path]:
    """``--workdir`` (kept), or a temporary directory removed afterwards."""
    path = given.resolve() if given else Path(tempfile.mkdtemp(prefix="etl-bench-"))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if given is None:
            shutil.rmtree(path, ignore_errors=True)
