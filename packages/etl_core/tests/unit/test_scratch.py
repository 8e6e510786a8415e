"""Scratch directories name their owner, so what a killed process left is swept by the next run."""

from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from etl_core.errors import (
    ConfigError,
    FatalError,
    ScratchSpaceError,
    StorageError,
    WorkDirError,
)
from etl_core.scratch import (
    OWNER_FILE,
    check_work_dir,
    make_scratch,
    scratch_dir,
    sweep_scratch,
)
from etl_core.storage.leases import this_holder


def dead_holder() -> dict[str, object]:
    """The owner record of a process of this host that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    me = this_holder()
    pid = int(child.stdout)
    return {"id": f"{me.host}:{pid}:gone", "host": me.host, "pid": pid, "namespace": me.namespace}


def test_a_scratch_directory_is_tagged_and_removed_when_done(tmp_path: Path) -> None:
    with scratch_dir(tmp_path, "unit") as directory:
        assert directory.parent == tmp_path
        assert directory.name.startswith("etl-unit-")
        assert json.loads((directory / OWNER_FILE).read_text())["id"] == this_holder().id
    assert not directory.exists()


def test_the_scratch_of_a_process_that_is_gone_is_swept_and_a_live_one_kept(
    tmp_path: Path,
) -> None:
    stale = tmp_path / "etl-file-stale"
    stale.mkdir()
    (stale / "member.csv").write_bytes(b"x" * 1000)
    (stale / OWNER_FILE).write_text(json.dumps(dead_holder()))
    foreign = tmp_path / "etl-file-other-host"
    foreign.mkdir()
    (foreign / OWNER_FILE).write_text(json.dumps({**dead_holder(), "host": "elsewhere"}))
    untagged = tmp_path / "etl-file-untagged"
    untagged.mkdir()
    with scratch_dir(tmp_path, "file") as mine:  # a new scratch sweeps its siblings
        assert not stale.exists()
        assert foreign.exists()  # another host's process may be alive: never judged by pid
        assert untagged.exists()  # not made by this module
        assert sweep_scratch(tmp_path) == 0
        assert mine.exists()


def test_the_scratch_of_a_process_killed_before_it_wrote_its_owner_is_swept(
    tmp_path: Path,
) -> None:
    """The directory's name carries its maker, for a kill between mkdir and ``.owner``."""
    made = subprocess.run(
        [sys.executable, "-c",
         "import sys; from etl_core.scratch import OWNER_FILE, make_scratch; "
         "d = make_scratch(sys.argv[1], 'file'); (d / OWNER_FILE).write_text('{\"id\": '); "
         "print(d.name)", str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    cut_short = tmp_path / made.stdout.strip()
    assert cut_short.is_dir()
    bare = tmp_path / made.stdout.strip().replace("etl-file-", "etl-spill-", 1)
    bare.mkdir()  # as left by a kill right after mkdir: no owner file at all
    tag = cut_short.name.split(".")[1][:8]
    live = tmp_path / f"etl-file-{this_holder().pid}.{tag}-mine"
    live.mkdir()  # this process's own, still being made
    other = "ffffffff" if tag != "ffffffff" else "00000000"
    foreign = tmp_path / cut_short.name.replace(f".{tag}-", f".{other}-", 1)
    foreign.mkdir()  # another host's (or boot's): never judged by pid
    assert sweep_scratch(tmp_path) == 2
    assert not cut_short.exists()
    assert not bare.exists()
    assert live.exists()
    assert foreign.exists()


def test_a_full_disk_under_the_work_dir_is_said_naming_it_and_the_scratch_is_removed(
    tmp_path: Path,
) -> None:
    """A write's ENOSPC names no path: the block ends naming the work directory instead."""

    def fill(scratch: Path) -> None:
        (scratch / "part.parquet").write_bytes(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(ScratchSpaceError) as raised, scratch_dir(tmp_path, "transform") as scratch:
        fill(scratch)
    error = raised.value
    assert error.directory == str(tmp_path)
    assert str(tmp_path) in str(error)
    assert "no space left on device" in str(error)
    assert "work_dir, ETL_WORK_DIR" in str(error)
    assert isinstance(error, FatalError)  # another attempt finds the same disk
    assert list(tmp_path.iterdir()) == []
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.directory, copy.purpose) == (str(error), str(tmp_path), "transform")


def test_an_engine_saying_the_disk_is_full_in_words_is_a_full_scratch(tmp_path: Path) -> None:
    with (
        pytest.raises(ScratchSpaceError, match="IO Error: No space left"),
        scratch_dir(tmp_path, "quality"),
    ):
        raise RuntimeError('IO Error: No space left on device writing "spill.tmp"')


def test_other_errors_and_another_disks_file_pass_through_the_scratch(tmp_path: Path) -> None:
    elsewhere = OSError(errno.ENOSPC, "No space left on device", "/var/lib/other/file")
    with pytest.raises(OSError, match="No space left") as raised, scratch_dir(tmp_path, "load"):
        raise elsewhere
    assert raised.value is elsewhere
    with pytest.raises(StorageError, match="cannot write"), scratch_dir(tmp_path, "load"):
        raise StorageError("cannot write 'k' in file:///store: No space left on device")
    with pytest.raises(OSError, match="Permission denied"), scratch_dir(tmp_path, "load"):
        raise OSError(errno.EACCES, "Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_work_dir_is_a_setting_to_fix_naming_it(tmp_path: Path) -> None:
    """mkdtemp's FileNotFoundError reached the operator as a bug's traceback."""
    missing = tmp_path / "no-such-dir"
    with pytest.raises(WorkDirError) as raised, scratch_dir(missing, "file"):
        pass
    error = raised.value
    assert isinstance(error, ConfigError)  # exit 2: every unit would fail alike
    assert error.directory == str(missing)
    assert error.fields == ("work_dir",)
    assert f"No such file or directory: {missing}" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.directory) == (str(error), str(missing))


def test_a_work_dir_on_a_disk_with_no_room_for_a_directory_is_a_full_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_room(*, prefix: str, dir: Path) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dir / f"{prefix}x"))

    monkeypatch.setattr(tempfile, "mkdtemp", no_room)
    with pytest.raises(ScratchSpaceError, match=f"work directory {tmp_path} "):
        make_scratch(tmp_path, "file")


def test_checking_a_work_dir_leaves_nothing_and_refuses_a_missing_one(tmp_path: Path) -> None:
    """What a fanning-out command runs before its units (one error at start, exit 2)."""
    check_work_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WorkDirError, match="work_dir: No such file or directory"):
        check_work_dir(tmp_path / "missing")
