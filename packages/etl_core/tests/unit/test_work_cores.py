"""A unit's engines share the host's cores with the units running at once beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_core.work import InlineExecutor, ThreadExecutor, WorkUnit, cores
from etl_core.work.cores import sharing_cores, unit_threads, units_at_once


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "host_cores", lambda: 4)


def units(count: int) -> list[WorkUnit]:
    return [WorkUnit("test_lane", "item", f"k{n}") for n in range(count)]


@pytest.mark.usefixtures("four_cores")
def test_a_unit_alone_gets_every_core_and_units_at_once_their_share() -> None:
    assert (units_at_once(), unit_threads()) == (1, 4)
    with sharing_cores(2):
        assert (units_at_once(), unit_threads()) == (2, 2)
        assert unit_threads(parts=2) == 1  # an archive's members checked two at once
        with sharing_cores(8):
            assert unit_threads() == 1  # never none
    assert (units_at_once(), unit_threads()) == (1, 4)


@pytest.mark.usefixtures("four_cores")
def test_threads_named_by_a_setting_are_kept_however_many_units_run() -> None:
    with sharing_cores(4):
        assert unit_threads(3) == 3


@pytest.mark.usefixtures("four_cores")
@pytest.mark.parametrize(("workers", "count", "expected"), [(2, 5, 2), (4, 3, 3), (3, 1, 1)])
def test_a_pool_s_units_share_the_cores_as_many_as_run_at_once(
    workers: int, count: int, expected: int
) -> None:
    def run(unit: WorkUnit) -> tuple[int, int]:
        return units_at_once(), unit_threads()

    seen = {r.value for r in ThreadExecutor(workers).run(run, units(count))}

    assert seen == {(expected, 4 // expected)}
    assert units_at_once() == 1  # the caller's own context is left as it was


def test_units_run_inline_are_alone() -> None:
    seen = {r.value for r in InlineExecutor().run(lambda unit: units_at_once(), units(3))}
    assert seen == {1}


def test_a_worker_process_says_how_many_units_it_runs_for_the_processes_it_forks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    monkeypatch.setattr(cores, "_in_process", 1)
    cores.share_cores_in_process(3)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked process, as a prefork worker's: it reads what its parent said
        os.write(write, str(units_at_once()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"3"
    with sharing_cores(2):  # a pool inside it says otherwise for its own units
        assert units_at_once() == 2


def test_the_host_s_cores_are_at_least_one() -> None:
    assert cores.host_cores() >= 1


@pytest.mark.parametrize(("quota", "expected"), [("150000 100000\n", 2), ("max 100000\n", None)])
def test_a_container_s_cpu_quota_bounds_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quota: str, expected: int | None
) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    (tmp_path / "cpu.max").write_text(quota)
    monkeypatch.setattr(cores, "CPU_QUOTA", tmp_path / "cpu.max")
    monkeypatch.setattr(cores, "CPU_QUOTA_V1", tmp_path / "absent")  # not this host's
    assert cores.host_cores() == (expected or 64)
    monkeypatch.setattr(cores, "CPU_QUOTA", tmp_path / "absent")
    assert cores.host_cores() == 64


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("200000", "100000", 2), ("50000", "100000", 1), ("-1", "100000", 64)],
)
def test_a_cgroup_v1_container_s_cpu_quota_bounds_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quota: str, period: str, expected: int
) -> None:
    """A host still on cgroup v1 (no ``cpu.max``): its ``cpu.cfs_quota_us`` (-1: none) over
    ``cpu.cfs_period_us`` bounds the cores as a v2 quota does."""
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(cores, "CPU_QUOTA", tmp_path / "absent")
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(period + "\n")
    monkeypatch.setattr(cores, "CPU_QUOTA_V1", tmp_path / "cpu")
    assert cores.host_cores() == expected


@pytest.mark.parametrize("quota", ["-100000 100000\n", "0 100000\n", "150000 -1\n"])
def test_a_cpu_quota_that_names_no_cores_is_ignored_not_taken_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quota: str
) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    (tmp_path / "cpu.max").write_text(quota)
    monkeypatch.setattr(cores, "CPU_QUOTA", tmp_path / "cpu.max")
    monkeypatch.setattr(cores, "CPU_QUOTA_V1", tmp_path / "absent")
    assert cores.host_cores() == 64
