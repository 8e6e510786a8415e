"""Benchmark of CLI start-up: what a run pays before and after its work, on a tiny input.

    .venv/bin/python bench/run.py startup [--rows 1000] [--repeat 5] [--reference BIN]

A tiny encrypted, zipped drop (``bench/file_processing.py``'s) and a tiny validated
partition (``bench/data_pipeline.py``'s) are laid out once, then, round after round
(interleaved, so a busy minute falls on every line alike), each in its own child:

* ``process``: ``etl-file-processing process <drop> --json``; its overhead is the
  wall time less ``duration_seconds`` of its JSON (the time inside ``Processor.process``);
* ``transform``: ``etl-data-pipeline transform``; its overhead is the wall time less
  the ``seconds`` of its ``partition transformed`` log line;
* ``--help`` of both, and ``python -c pass`` (the interpreter alone), for scale.

With ``--reference BIN`` (another checkout's ``.venv/bin``, e.g. main's) the same
commands of that venv run in the same rounds, against their own copies of the inputs,
so before and after are side by side. Median and spread (min-max) of every line; the
target: the median overhead of ``process`` and ``transform`` under 0.25 s.
Standard library at import time, as every benchmark of this directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """``bench/<name>.py``, loaded once by path as ``bench_<name>`` (bench/ is off sys.path)."""
    module_name = f"bench_{name}"
    if module_name not in sys.modules:
        path = HERE / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        sys.modules[module_name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module_name])
    return sys.modules[module_name]


if TYPE_CHECKING:
    import harness
else:
    harness = _load("harness")
fp_bench: Any = _load("file_processing")  # bench/file_processing.py: the drop, the command
dp_bench: Any = _load("data_pipeline")  # bench/data_pipeline.py: the partition, the command

# This file's siblings are named like the packages they measure: bench/ stays off sys.path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

MAX_OVERHEAD_SECONDS = 0.25  # issue 16, "Start-up"
DEFAULT_ROWS = 1000
THIS = "this"
REFERENCE = "reference"


@dataclass
class Line:
    """One measured command of one venv: wall seconds and overhead seconds per run."""

    command: str
    side: str
    walls: list[float] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    failure: str = ""

    @property
    def median_overhead(self) -> float | None:
        return statistics.median(self.overheads) if self.overheads else None


@dataclass(frozen=True)
class Side:
    """A venv whose CLIs are measured, with its own copies of the inputs."""

    name: str
    bin: Path
    fp: Any  # bench_file_processing.Layout
    dp: Any  # bench_data_pipeline.Layout


Measure = Callable[[Side, int], tuple[Any, float | None, str]]
"""Runs one command of a side once: (its child run, overhead seconds or None, failure)."""


def measure_process(side: Side, attempt: int, gpg: Any) -> tuple[Any, float | None, str]:
    """``etl-file-processing process`` of the tiny drop: wall, and wall less its own time."""
    fp_bench.reset_store(side.fp)
    cmd = [str(side.bin / "etl-file-processing"), *fp_bench.platform_cmd(side.fp)[1:]]
    run = harness.run_child(
        cmd, name=f"process-{side.name}-{attempt}", logs=side.fp.logs, cwd=side.fp.base,
        env=harness.child_env(**{fp_bench.KEY_ENV: gpg.secret_key}),
    )  # fmt: skip
    answer = run.json_answer() or {}
    if run.returncode or answer.get("status") != "validated":
        return run, None, f"exit {run.returncode}, status {answer.get('status')}"
    return run, run.seconds - float(answer["duration_seconds"]), ""


def measure_transform(side: Side, attempt: int) -> tuple[Any, float | None, str]:
    """``etl-data-pipeline transform`` of the tiny partition: wall, and wall less its own time."""
    cmd = [str(side.bin / "etl-data-pipeline"), *dp_bench.platform_cmd(side.dp, "transform")[1:]]
    run = harness.run_child(
        cmd, name=f"transform-{side.name}-{attempt}", logs=side.dp.logs, cwd=side.dp.base,
        env=dp_bench.child_env(),
    )  # fmt: skip
    inner = [float(e["seconds"]) for e in run.log_events("partition transformed")]
    if run.returncode or not inner:
        return run, None, f"exit {run.returncode}: {run.tail(3)}"
    return run, run.seconds - inner[0], ""


def measure_plain(cmd: list[str], side: Side, attempt: int) -> tuple[Any, float | None, str]:
    """A command with no work of its own (``--help``): its wall time is all overhead."""
    run = harness.run_child(
        cmd, name=f"plain-{side.name}-{attempt}", logs=side.fp.logs, cwd=side.fp.base,
        env=harness.child_env(),
    )  # fmt: skip
    if run.returncode:
        return run, None, f"exit {run.returncode}: {run.tail(3)}"
    return run, run.seconds, ""


def commands(gpg: Any) -> dict[str, Measure]:
    """The measured commands, by name."""
    return {
        "process (tiny drop)": lambda s, i: measure_process(s, i, gpg),
        "transform (tiny partition)": measure_transform,
        "file-processing --help": lambda s, i: measure_plain(
            [str(s.bin / "etl-file-processing"), "--help"], s, i
        ),
        "data-pipeline --help": lambda s, i: measure_plain(
            [str(s.bin / "etl-data-pipeline"), "--help"], s, i
        ),
        "python -c pass": lambda s, i: measure_plain([str(s.bin / "python"), "-c", "pass"], s, i),
    }


def prepare(workdir: Path, name: str, bin_dir: Path, rows: int, gpg: Any) -> Side:
    """The tiny drop and partition of side ``name`` (its venv's ``bin_dir``), under
    ``<workdir>/<name>``."""
    fp = fp_bench.Layout(workdir / name / "file_processing")
    fp_bench.prepare(fp, rows, gpg)
    dp = dp_bench.Layout(workdir / name / "data_pipeline")
    dp_bench.prepare(dp, rows)
    return Side(name, bin_dir, fp, dp)


def run_rounds(sides: list[Side], repeat: int, gpg: Any) -> list[Line]:
    """Every command of every side once per round, ``repeat`` rounds (the first is a warm-up
    of the page cache, not kept)."""
    lines: dict[tuple[str, str], Line] = {}
    measures = commands(gpg)
    for attempt in range(repeat + 1):
        print(f"  round {attempt or 'warm-up'} ...", end=" ", flush=True)
        for command, measure in measures.items():
            for side in sides:
                line = lines.setdefault((command, side.name), Line(command, side.name))
                run, overhead, failure = measure(side, attempt)
                if failure:
                    line.failure = failure
                elif attempt:
                    line.walls.append(run.seconds)
                    line.overheads.append(overhead or 0.0)
                    line.cpus.append(run.cpu_seconds)
        print("done", flush=True)
    return list(lines.values())


def spread(values: list[float]) -> str:
    """``median (min-max)`` of ``values``."""
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def report(lines: list[Line]) -> list[str]:
    """The table: each command's wall time, overhead and CPU time, median (min-max), side by
    side."""
    header = (
        f"{'command':<27} {'venv':<9} {'wall s, median (min-max)':<25} "
        f"{'overhead s':<25} CPU s (with gpg)"
    )
    rows = [header, "-" * (len(header) + 10)]
    for line in lines:
        if line.failure:
            rows.append(f"{line.command:<27} {line.side:<9} failed: {line.failure}")
            continue
        rows.append(
            f"{line.command:<27} {line.side:<9} {spread(line.walls):<25} "
            f"{spread(line.overheads):<25} {spread(line.cpus)}"
        )
    return rows


def targets(lines: list[Line]) -> tuple[list[str], bool]:
    """The 0.25 s overhead target of ``process`` and ``transform`` (this venv's)."""
    verdict = harness.Verdicts()
    for line in lines:
        if line.side != THIS or not line.command.startswith(("process", "transform")):
            continue
        median = line.median_overhead
        if median is None:
            verdict.lines.append(f"  n/a    {line.command} start-up: {line.failure}")
            continue
        verdict.lines.append(
            f"  {verdict(median < MAX_OVERHEAD_SECONDS)} {line.command} start-up, contracts "
            f"and exit under {MAX_OVERHEAD_SECONDS} s: {median:.3f} s (median of "
            f"{len(line.overheads)})"
        )
    return verdict.lines, verdict.all_met


def _averages(averages: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in averages)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py startup",
        description="Measure the CLIs' start-up overhead on a tiny drop and partition.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, metavar="N",
                        help="rows of the tiny inputs (default: %(default)s)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5, metavar="N",
                        help="measured rounds after a warm-up (default: %(default)s)")  # fmt: skip
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="run the children in this environment as it is; by default they cache bytecode "
        "(PYTHONPYCACHEPREFIX in the workdir, PYTHONDONTWRITEBYTECODE dropped), as an image "
        "whose wheels pip compiled at install does",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="BIN",
        help="another venv's bin/ (e.g. main's .venv/bin) measured in the same rounds",
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    if args.reference is not None and not (args.reference / "etl-file-processing").exists():
        parser.error(f"--reference {args.reference}: no etl-file-processing there")
    return args


def main(argv: list[str]) -> int:
    """Lay out the inputs, run the rounds, print the report; 0 unless a run failed."""
    args = parse_args(argv)
    if any(harness.missing_entry_point(n) for n in ("etl-file-processing", "etl-data-pipeline")):
        return 2
    with harness.workdir(args.workdir) as workdir:
        gpg = fp_bench.make_key()
        try:
            return _run(args, workdir, gpg)
        except subprocess.CalledProcessError as exc:
            print(f"preparing the inputs failed: {exc}", file=sys.stderr)
            return 1
        finally:
            fp_bench.drop_key(gpg)


def _run(args: argparse.Namespace, workdir: Path, gpg: Any) -> int:
    print(
        f"startup benchmark: {args.rows:,} rows, repeat {args.repeat} (+1 warm-up), "
        f"workdir {workdir}"
    )
    harness.print_settings()
    if not args.as_is:  # the children inherit it: the warm-up round fills the cache
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    print(f"  bytecode: {'as the environment says' if args.as_is else 'cached (--as-is: not)'}")
    bins = {THIS: harness.BIN}
    if args.reference is not None:
        bins[REFERENCE] = args.reference.absolute()
    for name, path in bins.items():
        print(f"  {name}: {path}")
    sides = [prepare(workdir, name, path, args.rows, gpg) for name, path in bins.items()]
    before = os.getloadavg()
    lines = run_rounds(sides, args.repeat, gpg)
    verdicts, all_met = targets(lines)
    after = os.getloadavg()
    load = f"load average (1, 5, 15 min) before {_averages(before)}, after {_averages(after)}"
    harness.print_report(report(lines), [f"{load}; {os.cpu_count()} CPUs"], verdicts)
    if any(line.failure for line in lines):
        return 1
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
