"""`make run`'s job, run from an empty working directory on the embedded defaults."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import importlib.util
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from repo_layout import REPO

from etl_core.testing.fixtures import postgres_server_url, postgres_url

__all__ = ["postgres_server_url", "postgres_url"]  # fixtures

TOKEN = "example-test-token-5f1d2c"  # made up for the test: found nowhere after a run
FOOTFALL_CHUNKS = "landing/api/retail_footfall/footfall"


def example_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    return {**env, "ETL_LOG_FORMAT": "json", "RETAIL_FOOTFALL_API_TOKEN": TOKEN}


def run_example(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=cwd,
        env=example_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> str:
    """The summary the example ends with."""
    assert "\n== Summary\n" in result.stdout
    return result.stdout.rpartition("\n== Summary\n")[2]


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One run of the example in an empty directory (shared: a run takes seconds)."""
    cwd = tmp_path_factory.mktemp("example")
    result = run_example(cwd)
    assert result.returncode == 0, result.stderr
    return cwd, result


def test_example_processes_transforms_loads_and_reports(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = first_run
    assert "delivered 11 file(s)" in result.stdout
    assert "7 validated, 4 quarantined, 0 skipped, 0 failed" in result.stdout
    for reason in ("data.quality", "pgp.no_key", "archive.path_traversal", "contract.unmatched"):
        assert reason in result.stdout
    assert "7 partition(s) processed, 0 failed" in result.stdout
    assert "runs_running" in result.stdout
    store = cwd / ".etl/store"
    assert (store / "landing/pos/pos_20261101.csv").is_file()
    assert (store / "curated/pos_transactions/dt=2026-11-05/_manifest.json").is_file()
    assert not (store / "curated/pos_transactions/dt=2026-11-07").exists()
    page = cwd / ".etl/status.html"
    assert f"status page: {page}" in result.stdout
    assert 'data-day="2026-11-10" data-state="missing"' in page.read_text()
    assert "arrival 2026-11-10: critical, missing" in result.stdout  # as the example tells
    assert "arrival 2026-11-04: ok, late" in result.stdout  # dates the vendor's deliveries
    assert "unknown, empty" not in result.stdout  # what the lanes wrote is dated before --at
    (rows,) = query(cwd / ".etl/etl.sqlite3", "SELECT count(*) FROM retail_sales_transaction")[0]
    assert rows == 6 * 300 + 299


def test_example_ingests_the_footfall_api_one_chunk_a_day(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = first_run
    store = cwd / ".etl/store"
    chunks = sorted((store / FOOTFALL_CHUNKS).glob("footfall_*.jsonl.gz"))
    assert [c.name[9:17] for c in chunks] == [f"202611{day:02d}" for day in range(1, 11)]
    records = [
        json.loads(line) for c in chunks for line in gzip.decompress(c.read_bytes()).splitlines()
    ]
    assert len(records) == len({r["id"] for r in records}) == 10 * 8 * 14
    pages = list((store / "raw/api/retail_footfall/footfall").rglob("*.json.gz"))
    assert len(pages) == 10 * 3  # 112 records a day, 50 a page
    assert "retail_footfall/footfall/2026-11-06T00:00:00Z..2026-11-07T00:00:00Z: 112 records" in (
        result.stdout
    )


def test_example_validates_curates_and_loads_the_footfall(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = first_run
    assert "10 validated, 0 quarantined, 0 skipped, 0 failed" in result.stdout
    assert "10 partition(s) processed, 0 failed" in result.stdout
    validated = cwd / ".etl/store/validated/retail_store_footfall"
    assert len(list(validated.glob("dt=2026-11-*/_deliveries/*.json"))) == 10
    (rejected,) = validated.glob("dt=2026-11-06/**/*.rejected.csv")  # the counter reset
    assert "S003-20261106T15" in rejected.read_text()
    database = cwd / ".etl/etl.sqlite3"
    assert query(database, "SELECT count(*), count(DISTINCT dt) FROM retail_store_footfall") == [
        (80, 10)
    ]
    hours = (
        "SELECT hours_counted, region FROM retail_store_footfall"
        " WHERE dt = '{}' AND store_code = 'S003'"
    )
    assert query(database, hours.format("2026-11-06")) == [(13, "ES")]
    assert query(database, hours.format("2026-11-07")) == [(14, "ES")]


def test_example_ends_with_one_short_summary(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = first_run
    summary = summary_of(result)
    assert len(summary.splitlines()) <= 20
    assert "delivered    11 vendor drop(s) (0 already there)" in summary
    assert "pos_transactions 7 file(s) (2,099 rows, 1 rejected)" in summary
    assert "retail_store_footfall 10 file(s) (1,119 rows, 1 rejected)" in summary
    assert "quarantined  4: " in summary
    assert (
        "pos_transactions 7 partition(s) (2,099 rows); retail_store_footfall 10 partition(s)"
        in (summary)
    )
    assert "2,099 rows into retail_sales_transaction, 80 rows into retail_store_footfall" in summary
    assert "retail_footfall/footfall: 1,120 new record(s) in 10 chunk(s) from 30 page(s)" in summary
    assert "pos_transactions         critical arrival 2026-11-10" in summary
    assert "retail_store_footfall    ok" in summary  # its days dated as ingested nightly
    assert f"status page  {cwd / '.etl/status.html'}" in summary
    assert "quarantine list" in summary
    assert "ingest status" in summary


def test_the_api_token_is_in_no_output_and_no_stored_object(
    first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    cwd, result = first_run
    assert TOKEN not in result.stdout + result.stderr
    for path in (cwd / ".etl").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            assert TOKEN.encode() not in data, path
    config = (cwd / ".etl/config/sources/retail_footfall.toml").read_text()
    assert 'token = "env:RETAIL_FOOTFALL_API_TOKEN"' in config
    assert 'base_url = "http://127.0.0.1:' in config


def test_second_run_finds_everything_already_done(
    first_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    shutil.copytree(first_run[0] / ".etl", tmp_path / ".etl")  # the first run's outcome
    store = tmp_path / ".etl/store"
    chunks = sorted(p.name for p in (store / FOOTFALL_CHUNKS).iterdir())
    again = run_example(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "delivered 0 file(s), 11 already there unchanged" in again.stdout
    assert "0 validated, 0 quarantined, 21 skipped, 0 failed" in again.stdout  # drops and chunks
    assert "0 validated, 0 quarantined, 10 skipped, 0 failed" in again.stdout  # the chunks
    assert again.stdout.count("0 partition(s) processed") == 2
    assert again.stdout.count("skipped (ingested before)") == 10
    assert sorted(p.name for p in (store / FOOTFALL_CHUNKS).iterdir()) == chunks
    summary = summary_of(again)
    assert "nothing changed: all 11 vendor drops were there already" in summary
    assert "retail_footfall/footfall: 0 new record(s); 10 window(s) ingested before" in summary
    assert query(tmp_path / ".etl/etl.sqlite3", "SELECT count(*) FROM retail_store_footfall") == [
        (80,)
    ]


def read_line(process: subprocess.Popen[str], seconds: float, *, stderr: bool = False) -> str:
    """The next non-empty line the process prints (on stdout, or stderr), waiting no
    longer than ``seconds``."""
    stream = process.stderr if stderr else process.stdout
    assert stream is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = stream.readline()
        if line == "":
            break
        if line.strip():
            return line
    return ""


def test_a_second_run_waits_for_the_run_using_the_work_directory(tmp_path: Path) -> None:
    """Two runs at once would share .etl/config: the later one's copy, pointing at its own
    API, would replace the earlier one's mid-run (its ingestion then fails with HTTP 401)."""
    (tmp_path / ".etl").mkdir()
    with (tmp_path / ".etl/run.lock").open("a+") as held:  # a run in progress
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        second = subprocess.Popen(
            [sys.executable, str(REPO / "examples/retail/run.py")],
            cwd=tmp_path,
            env=example_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            waiting = read_line(second, 60)
            assert "another run of the example (pid 4242) is using" in waiting, waiting
            assert "waiting for it to finish" in waiting
            assert second.poll() is None
            assert not (tmp_path / ".etl/config").exists()  # it has not started
            fcntl.flock(held, fcntl.LOCK_UN)  # the first run ends
            assert read_line(second, 60).startswith("== 1. vendor drops")
            assert (tmp_path / ".etl/config").is_dir()
        finally:
            second.terminate()
            second.communicate(timeout=30)


def test_ctrl_c_lets_the_running_step_stop_its_own_way_and_exits_130(tmp_path: Path) -> None:
    """The terminal's Ctrl-C reaches the example and its console script alike: the script
    finishes its units in flight and says what remains (here one paused 2 s at its checks),
    the example waits for it, then exits 130 with one line, no traceback."""
    env = {**example_environment(), "ETL_FAULT_AT": "checks:pause", "ETL_FAULT_PAUSE": "2"}
    example = subprocess.Popen(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        line = "-"
        while line and "ETL_FAULT_AT: pause at checks" not in line:
            line = read_line(example, 120, stderr=True)
        assert line, "the scan never reached its checks"
        os.killpg(example.pid, signal.SIGINT)  # Ctrl-C
        _, rest = example.communicate(timeout=120)
    finally:
        if example.poll() is None:
            os.killpg(example.pid, signal.SIGKILL)
            example.communicate()
    assert example.returncode == 130, rest
    assert "Traceback" not in rest
    stopped = [json.loads(x) for x in rest.splitlines() if x.startswith("{")]
    assert any(r["event"].startswith("interrupted (Ctrl-C)") for r in stopped), rest
    assert rest.rstrip().endswith(
        "interrupted (Ctrl-C): what finished is kept; `make run` again carries on"
    )


def test_an_exported_celery_executor_does_not_send_the_examples_units_to_workers(
    tmp_path: Path,
) -> None:
    """An operator who exported the Celery section's settings still gets the example run
    here: workers elsewhere read their own store and config, so its units sent there
    were skipped (or, as here with no broker answering, the scan failed)."""
    env = {
        **example_environment(),
        "ETL_EXECUTOR": "celery",
        "ETL_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
    }
    example = subprocess.Popen(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        while not lines or not any(
            marker in lines[-1] for marker in (" failed\n", "exited with", "== 4.")
        ):
            line = read_line(example, 120)
            if not line:
                break
            lines.append(line)
    finally:
        os.killpg(example.pid, signal.SIGTERM)
        example.communicate(timeout=60)
    shown = "".join(lines)
    assert "ETL_EXECUTOR=celery is set: the example runs its units in its own processes" in shown
    assert "7 validated, 4 quarantined, 0 skipped, 0 failed\n" in shown


STEP = """
import signal, sys, time
def stop(signum, frame):
    time.sleep(0.5)  # finishing its units in flight
    print("step stopped its own way", flush=True)
    print("step: 2 of 11 finished, 9 remain", flush=True, file=sys.stderr)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[1] == "deaf" else stop)
print("step running", flush=True, file=sys.stderr if sys.argv[1] == "background" else sys.stdout)
time.sleep(60)
"""
"""A console script as the example runs it: it stops its own way on SIGTERM and, unless
``deaf``, on Ctrl-C (SIGINT)."""

EXAMPLE_STEP = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import run
run.stop_on_sigterm()
background = sys.argv[3] == "background"
pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} if background else {}
step = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[3]], text=True, **pipes)
print(step.pid, flush=True)
try:
    if background:  # as run.start() starts the steps shown when they are finished
        with run.Started(("step",), step):
            sys.stderr.write(step.stderr.readline())  # it runs
            step.wait()
    else:
        run.wait_for(step)
except KeyboardInterrupt:
    print(f"step exited {step.poll()}", flush=True)
    raise SystemExit(run.INTERRUPTION.exit_code())
"""
"""The example running one step (``run.wait_for``), as its ``__main__`` ends."""


def start_a_step(kind: str) -> tuple[subprocess.Popen[str], int]:
    """The example running one step of ``kind`` in a process group of its own (a
    terminal's foreground job), and the step's pid, once the step runs."""
    example = subprocess.Popen(
        [sys.executable, "-c", EXAMPLE_STEP, str(REPO / "examples/retail"), STEP, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pid = int(read_line(example, 60) or "0")
    assert read_line(example, 60, stderr=kind == "background") == "step running\n"
    return example, pid


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def step_running(kind: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """:func:`start_a_step`; afterwards neither the example nor its step is left running."""
    example, pid = start_a_step(kind)
    try:
        yield example, pid
    finally:
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)
        if example.poll() is None:
            os.killpg(example.pid, signal.SIGKILL)
            example.communicate()


def test_a_second_ctrl_c_kills_a_step_that_goes_on_so_none_outlives_the_run() -> None:
    """The step ignores Ctrl-C: the first one has the example wait, the second one stops
    waiting; the step went on running beside the next run (the lock on .etl/ gone)."""
    with step_running("deaf") as (example, pid):
        os.killpg(example.pid, signal.SIGINT)  # Ctrl-C
        said = read_line(example, 20, stderr=True)
        python = Path(sys.executable).name
        assert (
            said == f"waiting for {python} (pid {pid}) to stop its own way; Ctrl-C again kills it\n"
        )
        assert example.poll() is None  # waiting for the step
        os.killpg(example.pid, signal.SIGINT)  # Ctrl-C again
        out, err = example.communicate(timeout=20)
        assert example.returncode == 130, err
        assert out == f"step exited {-signal.SIGKILL}\n"
        assert not is_running(pid)


def test_sigterm_waits_for_the_step_to_stop_its_own_way_and_exits_143() -> None:
    """A supervisor's SIGTERM to the process group: the example ended at once, the step
    left running unwatched (and .etl/ unlocked)."""
    with step_running("listening") as (example, _):
        os.killpg(example.pid, signal.SIGTERM)
        out, err = example.communicate(timeout=20)
        assert example.returncode == 143, err
        assert out == "step stopped its own way\nstep exited 143\n"


def test_ctrl_c_passes_on_what_a_background_step_says_it_left() -> None:
    """A step started in the background (the pipeline run and the ingestion beside it):
    its account of what it finished and what remains was captured and dropped."""
    with step_running("background") as (example, _):
        os.killpg(example.pid, signal.SIGINT)  # Ctrl-C
        out, err = example.communicate(timeout=20)
        assert example.returncode == 130, err
        assert out == "step exited 130\n"
        assert err == "step: 2 of 11 finished, 9 remain\n"


def test_a_bad_exported_setting_is_said_in_one_line_and_exits_2(tmp_path: Path) -> None:
    """It ended in a traceback of the example's own settings load."""
    done = subprocess.run(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=tmp_path,
        env={**example_environment(), "ETL_EXECUTOR": "bogus"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "executor: expected one of 'local', 'celery', got 'bogus' (from env ETL_EXECUTOR)" in (
        done.stderr
    )
    assert not (tmp_path / ".etl").exists()  # nothing was done


def test_a_work_directory_it_cannot_lock_is_named(tmp_path: Path) -> None:
    """Another user's .etl/ or a read-only one: it ended in a traceback opening the lock."""
    (tmp_path / ".etl/run.lock").mkdir(parents=True)  # root may write anywhere: no chmod
    done = subprocess.run(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=tmp_path,
        env=example_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"cannot hold {tmp_path.resolve()}/.etl/run.lock (one run at a time uses "
        f"{tmp_path.resolve()}/.etl/): Is a directory"
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_a_password_in_the_exported_database_url_is_in_no_output(
    tmp_path: Path, postgres_url: str
) -> None:
    """The summary's commands to try repeated DATABASE_URL as exported, password and all."""
    password = "pg-Secret-3e9a71"  # the test server trusts 127.0.0.1: any password works
    url = postgres_url.replace("://postgres@", f"://postgres:{password}@", 1)
    assert password in url
    result = subprocess.run(
        [sys.executable, str(REPO / "examples/retail/run.py")],
        cwd=tmp_path,
        env={**example_environment(), "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert password not in result.stdout + result.stderr
    assert "with your DATABASE_URL (postgresql://postgres:***@" in summary_of(result)


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """examples/retail/run.py imported in this process (its own modules beside it), and
    forgotten afterwards."""
    monkeypatch.syspath_prepend(str(REPO / "examples/retail"))
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("retail_run", REPO / "examples/retail/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_the_summarys_exports_name_the_database_and_the_store_the_run_used(
    run_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ETL_DATABASE_URL=postgresql://… ETL_STORAGE_URL=… make run` loaded PostgreSQL and
    wrote that store, but the summary's line to export named the example's SQLite file
    (``DATABASE_URL=sqlite:…``, a database the run never touched) and no store."""
    store_url = f"file://{tmp_path}/store"
    monkeypatch.setenv("ETL_STORAGE_URL", store_url)
    env = {
        "ETL_CONFIG_DIR": str(tmp_path / "config"),
        "ETL_STORAGE_URL": store_url,
        "ETL_DATABASE_URL": "postgresql://etl@127.0.0.1/etl",
        "DATABASE_URL": "sqlite:////elsewhere/etl.sqlite3",
    }

    commands = dict(run_module.look_next(SimpleNamespace(url=store_url), env))["commands"]

    assert "ETL_DATABASE_URL=postgresql://etl@127.0.0.1/etl" in commands
    assert f"ETL_STORAGE_URL={store_url}" in commands
    assert "sqlite" not in commands


def test_the_summarys_exports_name_the_examples_database_by_default(
    run_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETL_STORAGE_URL", raising=False)
    env = {
        "ETL_CONFIG_DIR": str(tmp_path / "config"),
        "ETL_STORAGE_URL": ".etl/store",
        "DATABASE_URL": "sqlite:////work/.etl/etl.sqlite3",
    }

    commands = dict(run_module.look_next(SimpleNamespace(url="file:///work/.etl/store"), env))

    assert commands["commands"].endswith(" DATABASE_URL=sqlite:////work/.etl/etl.sqlite3")
    assert "ETL_STORAGE_URL" not in commands["commands"]
