"""The benchmarks still run: a tiny size of each, on the dev environment's own tools."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from repo_layout import REPO


def bench(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env["ETL_BENCH_TOOLS_PYTHON"] = sys.executable  # duckdb is there; polars may not be
    return subprocess.run(
        [sys.executable, str(REPO / "bench/run.py"), *args, "--workdir", str(workdir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_data_pipeline_benchmark_runs_and_reports_its_targets(tmp_path: Path) -> None:
    done = bench(
        "data_pipeline", "--rows", "3000", "--repeat", "2", "--no-load", "--no-polars",
        workdir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "platform transform" in done.stdout
    assert "transform within 1.3x of direct DuckDB at 3,000 rows" in done.stdout
    table = [line for line in done.stdout.splitlines() if line.startswith("duckdb direct ")]
    assert table
    assert "3,000" in table[0]


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg (apt install gnupg)")
def test_file_processing_benchmark_runs(tmp_path: Path) -> None:
    done = bench("file_processing", "--rows", "3000", "--repeat", "2", workdir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "targets" in done.stdout
    assert "bytecode: the packages compiled first and cached" in done.stdout
    # The start-up figure is the fastest run's wall less that run's own inner time.
    split = [line for line in done.stdout.splitlines() if "inside Processor.process" in line]
    assert split
    assert "contracts and exit (the fastest run; its CPU" in split[0]
    assert "s in its fastest run (gpg and funzip" in done.stdout
    assert "duckdb checks, 3,000 rows: CPU" in done.stdout
    assert "fastest of the repeats' sums" in done.stdout


def file_processing_bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``bench/file_processing.py`` loaded as a module."""
    spec = importlib.util.spec_from_file_location("fp_bench", REPO / "bench/file_processing.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fp_bench", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_file_processing_benchmark_lets_the_platform_cache_its_bytecode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A shell that says PYTHONDONTWRITEBYTECODE had every timed `process` compile the
    # workspace's packages again; the reference tools' packages come compiled.
    module = file_processing_bench(monkeypatch)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = module.platform_env(RETAIL_POS_PGP_KEY="k")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["RETAIL_POS_PGP_KEY"] == "k"


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg (apt install gnupg)")
def test_startup_benchmark_reports_the_overhead_target_of_process_and_transform(
    tmp_path: Path,
) -> None:
    done = bench("startup", "--rows", "50", "--repeat", "1", workdir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for command in ("process (tiny drop)", "transform (tiny partition)"):
        assert f"{command} start-up, contracts and exit under 0.25 s" in done.stdout


def test_archive_members_benchmark_runs_again_in_a_kept_workdir(tmp_path: Path) -> None:
    for _ in range(2):  # the second run lays its store out afresh over the first one's
        done = bench("archive_members", "--members", "3", workdir=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "validated, every member in the manifest" in done.stdout


def test_ingest_benchmark_runs_the_platform_and_the_plain_loop_with_and_without_latency(
    tmp_path: Path,
) -> None:
    done = bench(
        "ingest", "--records", "3000", "--page-size", "500", "--latency-ms", "5", "--no-dlt",
        workdir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    platform = [line for line in done.stdout.splitlines() if line.startswith("| platform |")]
    assert len(platform) == 4  # two styles, two latencies
    assert all("| 3,000 |" in line for line in platform)
    assert "offset, 5 ms: platform at least 3.0x the sequential loop" in done.stdout


def test_celery_benchmark_runs_each_part_on_a_tiny_size(tmp_path: Path) -> None:
    done = bench(
        "celery", "--drops", "3", "--rows", "20", "--partitions", "2", "--partition-rows", "200",
        "--workers", "1", "--round-trips", "5", "--brokers", "redis", "--repeat", "2",
        workdir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "local executor, 1 thread(s)" in done.stdout
    assert "backfill: 2 partitions" in done.stdout
    if "does not answer" not in done.stdout and "nothing answers" not in done.stdout:
        assert "celery (Redis), 1 worker process(es)" in done.stdout
        assert "redis, window 1" in done.stdout
        # where a Celery run's CPU and time went: by process, and around its units
        split = [line for line in done.stdout.splitlines()
                 if line.startswith("celery (Redis), 1 worker process(es)") and "validated" not in
                 line and "succeeded" not in line]  # fmt: skip
        assert len(split) == 2  # the file lane's and the backfill's
        label = len("celery (Redis), 1 worker process(es)")
        assert all(len(line[label:].split()) == 4 + 3 for line in split), split  # CPU, marks
        assert "first unit in (s)" in done.stdout
        running = [float(line.split()[-1]) for line in split]  # one process: at most 1
        assert all(0 < n <= 1.05 for n in running), split
        # two rounds: each ratio's same-round figures beside the fastest runs' verdict
        within = [line for line in done.stdout.splitlines() if "within 10% of the local" in line]
        assert len(within) == 2, done.stdout  # the file lane's and the backfill's
        assert all("(same rounds: median " in line for line in within), within


def celery_bench_module() -> ModuleType:
    """bench/celery.py, loaded by path as its runner loads it (bench/ is not a package)."""
    if "bench_celery" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_celery", REPO / "bench/celery.py")
        assert spec is not None
        assert spec.loader is not None
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["bench_celery"]


def test_celery_benchmark_rounds_alternate_the_order_of_their_lines() -> None:
    celery = celery_bench_module()
    lines = [celery.Line(label, run=lambda round_: (None, 0.0, "", {})) for label in "abc"]
    orders = ["".join(line.label for line in celery.round_order(lines, n)) for n in range(4)]
    assert orders == ["abc", "cba", "abc", "cba"]


def test_celery_benchmark_targets_say_the_same_round_ratios_beside_the_fastest_runs() -> None:
    celery = celery_bench_module()
    local, one, two = ("local executor, 1 thread(s)", "celery (Redis), 1 worker process(es)",
                       "celery (Redis), 2 worker process(es)")  # fmt: skip
    seconds = {local: {0: 10.0, 1: 20.0, 2: 12.0}, one: {0: 20.0, 1: 21.0, 2: 12.5},
               two: {0: 10.0, 1: 12.0}}  # fmt: skip
    fastest = {label: 200 / min(by_round.values()) for label, by_round in seconds.items()}
    lines, missed = celery.targets(fastest, {}, {}, {"file lane": seconds})
    # the verdicts stay those of each line's fastest run (10 s against 12.5 s: 0.80x) ...
    assert lines[1].startswith("file lane (Redis): celery with 1 worker within 10% of the "
                               "local executor: 0.80x MISSED")  # fmt: skip
    # ... and the rounds' own ratios, each run against the other line's of the same minutes
    assert lines[1].endswith("(same rounds: median 0.95x of 0.50x, 0.95x, 0.96x)")
    assert lines[0].endswith("1.25x MISSED (same rounds: median 1.88x of 2.00x, 1.75x)")
    assert missed
    alone, _ = celery.targets(fastest, {}, {}, {"file lane": {local: {0: 10.0}, one: {0: 11.0}}})
    assert "same rounds" not in alone[1]  # one round: nothing to pair


def test_observability_benchmark_lists_incrementally_and_scrapes(tmp_path: Path) -> None:
    done = bench(
        "observability", "--objects", "600", "--days", "6", "--datasets", "2", "--new", "20",
        "--scrape-objects", "200", "--clients", "4", "--client-processes", "2",
        "--seconds", "3", "--repeat", "1",
        workdir=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| incremental equals a fresh reconcile | yes |" in done.stdout
    assert "incremental at least 10x faster than the full listing" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| during cycles |")]
    assert len(rows) == 3  # two paths and the cycles seen
    local = [line for line in done.stdout.splitlines() if line.startswith("| during cycles, local")]
    assert len(local) == 3
    finished = int(local[2].split("cycles finished during the load: ")[1].split()[0].strip(","))
    assert finished >= 1  # cycles of a second on 200 objects: some finish in 3 s of load
    assert "cycles finished while scraped (local store):" in done.stdout


def test_file_processing_reference_is_the_fastest_of_its_whole_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Like the platform's, one whole run's time: not the floor's luckiest run added to the
    # checks' luckiest (1.1 s here), which no run of the two back to back achieved.
    module = file_processing_bench(monkeypatch)
    floor = module.Result(10, module.FLOOR, seconds=0.5, round_seconds=[1.0, 0.5])
    duck = module.Result(10, module.DUCKDB, seconds=0.6, round_seconds=[0.6, 1.0])
    both = module.combined(floor, duck, 10)
    assert both.seconds == pytest.approx(1.5)
    assert "each half's fastest added: 1.10 s" in both.notes[0]


def test_file_processing_inner_time_is_the_fastest_runs_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = file_processing_bench(monkeypatch)
    runs = []
    for index, (seconds, inner) in enumerate([(2.0, 1.65), (0.9, 0.74), (1.5, 1.2)]):
        out = tmp_path / f"{index}.stdout"
        out.write_text(json.dumps({"inner_seconds": inner, "inner": "inside validate_file"}))
        runs.append(module.harness.ChildRun(0, seconds, 0, out, tmp_path / "none", 0.0))
    note = module._inner_note(module.QUALITY, 10, runs)
    assert note == f"{module.QUALITY}, 10 rows: 0.74 s inside validate_file"
