"""Run the platform's benchmarks: ``make bench`` or ``python bench/run.py [NAME [options]]``.

    .venv/bin/python bench/run.py                                   # every benchmark
    .venv/bin/python bench/run.py data_pipeline --rows 1000000      # one, with its options
    .venv/bin/python bench/run.py --list

Each benchmark is a module of this directory exposing ``main(argv: list[str]) -> int``;
add one with a line in :data:`BENCHMARKS`. Its options follow its name. What they share
is ``bench/harness.py``, which each loads itself (by path, as ``bench_harness``).

The modules are loaded by file path under a ``bench_`` name, and this directory is
taken off ``sys.path``: ``bench/data_pipeline.py`` must not shadow the ``data_pipeline``
package it measures (nor ``bench/file_processing.py`` the ``file_processing`` one).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent

# name -> module file in bench/ (each exposes ``main(argv: list[str]) -> int``).
BENCHMARKS: dict[str, str] = {
    "archive_members": "archive_members.py",
    "celery": "celery.py",
    "data_pipeline": "data_pipeline.py",
    "ingest": "ingest.py",
    "file_processing": "file_processing.py",
    "observability": "observability.py",
    "startup": "startup.py",
}

# `python bench/run.py` puts bench/ first on sys.path; drop it (see the module docstring).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]


def load_benchmark(name: str) -> Callable[[list[str]], int]:
    """The ``main`` of benchmark ``name``, imported from its file as ``bench_<name>``."""
    path = BENCH_DIR / BENCHMARKS[name]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load benchmark {name!r} from {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    entry: Callable[[list[str]], int] = module.main
    return entry


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark (its options passed through) or, with no name, every one."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run the ETL platform's benchmarks.",
        epilog="Options after NAME go to that benchmark; `bench/run.py NAME --help` lists them.",
    )
    parser.add_argument(
        "name",
        nargs="?",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"benchmark to run (default: all of {', '.join(sorted(BENCHMARKS))})",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    args = parser.parse_args(argv)
    rest: list[str] = args.options
    if args.list:
        for name, file in sorted(BENCHMARKS.items()):
            print(f"{name}\tbench/{file}")
        return 0
    if args.name is None and rest:
        parser.error(f"options {' '.join(rest)} need a benchmark NAME before them")
    names = [args.name] if args.name else sorted(BENCHMARKS)
    worst = 0
    for name in names:
        if len(names) > 1:
            print(f"\n=== {name} ===", flush=True)
        code = load_benchmark(name)(rest)
        if code:
            print(f"benchmark {name} exited with {code}", file=sys.stderr)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
