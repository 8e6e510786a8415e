"""A lane validator's pass on an unchanged contract is remembered; anything else runs it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etl_core.contracts import Contract, ContractError, load_contracts
from etl_core.contracts.memo import PassMemo, default_cache_dir, read_outside_state, remembered
from etl_core.runtime import RuntimeSettings

CONTRACT = 'dataset = "pos"\nsource = "pos"\npattern = "pos_{date:%Y%m%d}.csv"\n'
COLUMNS = '[[columns]]\nname = "store_id"\n'


def config(tmp_path: Path, text: str = CONTRACT + COLUMNS) -> Path:
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    (datasets / "pos.toml").write_text(text, encoding="utf-8")
    return tmp_path / "config"


def spy(
    *modules: str, problems: list[tuple[str, str]] | None = None
) -> tuple[Callable[[Contract], list[tuple[str, str]]], list[str]]:
    """A remembered validator that counts its calls and finds ``problems``."""
    calls: list[str] = []

    @remembered(*modules)
    def rule(contract: Contract) -> list[tuple[str, str]]:
        calls.append(contract.dataset)
        return list(problems or [])

    return rule, calls


def load(directory: Path, memo: Path | None, *validators: Callable[..., object]) -> None:
    load_contracts(directory, validators=validators, environ={}, memo_dir=memo)  # type: ignore[arg-type]


def test_a_second_load_of_the_same_contract_skips_the_validator(tmp_path: Path) -> None:
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos"]
    assert len(list((memo / "contract-checks").iterdir())) == 1


def test_a_changed_contract_runs_the_validator_again(tmp_path: Path) -> None:
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    config(tmp_path, CONTRACT + COLUMNS + '[[columns]]\nname = "sku"\n')
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_changed_validator_code_runs_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lib").mkdir()
    dependency = tmp_path / "lib" / "memo_engine_probe.py"
    dependency.write_text("VERSION = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    directory, memo = config(tmp_path), tmp_path / "cache"
    rule, calls = spy("memo_engine_probe")
    load(directory, memo, rule)
    load(directory, memo, rule)
    dependency.write_text("VERSION = 22\n", encoding="utf-8")  # a reinstalled engine
    rule_again, calls_again = spy("memo_engine_probe")  # a new process: a new fingerprint
    load(directory, memo, rule_again)
    assert (calls, calls_again) == (["pos"], ["pos"])


def test_a_validator_whose_dependency_is_not_found_is_always_run(tmp_path: Path) -> None:
    rule, calls = spy("no_such_engine_anywhere")
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_an_unmarked_validator_is_always_run(tmp_path: Path) -> None:
    calls: list[str] = []

    def rule(contract: Contract) -> list[tuple[str, str]]:
        calls.append(contract.dataset)
        return []

    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]
    assert not (memo / "contract-checks").exists()


def test_a_failing_contract_is_never_remembered_and_reports_every_time(tmp_path: Path) -> None:
    rule, calls = spy(problems=[("columns[0].name", "the engine refuses it")])
    directory, memo = config(tmp_path), tmp_path / "cache"
    for _ in range(2):
        with pytest.raises(ContractError) as caught:
            load(directory, memo, rule)
        assert caught.value.fields == ("columns[0].name",)
    assert calls == ["pos", "pos"]
    assert not (memo / "contract-checks").exists()


def test_no_memo_dir_runs_the_validator_every_time(tmp_path: Path) -> None:
    rule, calls = spy()
    directory = config(tmp_path)
    load(directory, None, rule)
    load(directory, None, rule)
    assert calls == ["pos", "pos"]


def test_a_corrupt_memo_entry_runs_the_validator_and_is_rewritten(tmp_path: Path) -> None:
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    (entry,) = (memo / "contract-checks").iterdir()
    entry.write_bytes(b"\xff half a write")
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]
    assert entry.read_text(encoding="ascii") == entry.name


def test_an_unwritable_memo_dir_runs_the_validator_without_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_a_memo_dir_that_is_a_file_runs_the_validator_without_error(tmp_path: Path) -> None:
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    memo.write_text("not a directory", encoding="utf-8")
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_the_memo_remembers_only_what_it_was_told(tmp_path: Path) -> None:
    memo = PassMemo(tmp_path)
    assert not memo.passed("abc")
    memo.remember("abc")
    assert memo.passed("abc")
    assert [p.name for p in (tmp_path / "contract-checks").iterdir()] == ["abc"]  # no temp left


def test_settings_place_the_memo_or_turn_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "etl"
    assert RuntimeSettings().contract_memo_dir() == tmp_path / "xdg" / "etl"
    assert RuntimeSettings(cache_dir=tmp_path / "c").contract_memo_dir() == tmp_path / "c"
    assert (
        RuntimeSettings(cache_dir=tmp_path / "c", contract_memo=False).contract_memo_dir() is None
    )


def remembered_entry(tmp_path: Path) -> tuple[Path, Path, Callable[..., object], list[str]]:
    """A config, a memo holding its pass, the spied validator and its calls so far."""
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    return directory, memo, rule, calls


def test_the_memo_dir_it_creates_is_private(tmp_path: Path) -> None:
    _, memo, _, _ = remembered_entry(tmp_path)
    assert (memo / "contract-checks").stat().st_mode & 0o077 == 0


def test_an_entry_others_may_write_does_not_skip_the_validator(tmp_path: Path) -> None:
    directory, memo, rule, calls = remembered_entry(tmp_path)
    (entry,) = (memo / "contract-checks").iterdir()
    entry.chmod(0o666)  # anyone could have written this "pass"
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_an_entry_another_user_owns_does_not_skip_the_validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, memo, rule, calls = remembered_entry(tmp_path)
    uid = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: uid + 1)  # the entry is now someone else's
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


def test_a_linked_entry_does_not_skip_the_validator(tmp_path: Path) -> None:
    directory, memo, rule, calls = remembered_entry(tmp_path)
    (entry,) = (memo / "contract-checks").iterdir()
    planted = tmp_path / "planted"
    entry.rename(planted)
    entry.symlink_to(planted)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]


@pytest.mark.timeout(20)
def test_a_pipe_or_directory_named_as_an_entry_neither_blocks_nor_skips(tmp_path: Path) -> None:
    directory, memo, rule, calls = remembered_entry(tmp_path)
    (entry,) = (memo / "contract-checks").iterdir()
    entry.unlink()
    os.mkfifo(entry)  # reading it whole would wait for a writer forever
    load(directory, memo, rule)
    entry.unlink()
    entry.mkdir()
    load(directory, memo, rule)
    assert calls == ["pos", "pos", "pos"]


def test_no_pass_is_written_into_a_directory_others_may_write(tmp_path: Path) -> None:
    rule, calls = spy()
    directory, memo = config(tmp_path), tmp_path / "cache"
    (memo / "contract-checks").mkdir(parents=True)
    (memo / "contract-checks").chmod(0o777)
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]
    assert list((memo / "contract-checks").iterdir()) == []


def test_no_home_and_no_absolute_xdg_cache_home_means_no_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # no home: "~" stays
    assert default_cache_dir() is None
    assert RuntimeSettings().contract_memo_dir() is None
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "etl"


def test_tests_keep_the_memo_out_of_the_home_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cache = RuntimeSettings().contract_memo_dir()
    assert cache is not None
    assert cache.is_relative_to(tmp_path_factory.getbasetemp())


def test_a_pass_that_read_outside_state_is_not_remembered(tmp_path: Path) -> None:
    calls: list[str] = []

    @remembered()
    def rule(contract: Contract) -> list[tuple[str, str]]:
        calls.append(contract.dataset)
        read_outside_state("a reference file")
        return []

    directory, memo = config(tmp_path), tmp_path / "cache"
    load(directory, memo, rule)
    load(directory, memo, rule)
    assert calls == ["pos", "pos"]
    assert not (memo / "contract-checks").exists()
    read_outside_state("outside any load: ignored")


def test_the_memo_keeps_only_its_most_recently_used_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etl_core.contracts.memo.KEEP", 4)
    memo = PassMemo(tmp_path)
    keys = [f"{n:064x}" for n in range(5)]
    day = 86_400
    for age, key in zip((50, 40, 30, 20), keys[:4], strict=True):
        memo.remember(key)
        then = os.stat(memo.directory / key).st_mtime - age * day
        os.utime(memo.directory / key, (then, then))
    assert memo.passed(keys[0])  # read long after it was written: marked used again
    memo.remember(keys[4])
    kept = sorted(path.name for path in memo.directory.iterdir())
    assert kept == sorted([keys[0], keys[2], keys[3], keys[4]])


def test_a_recent_verdict_read_again_is_not_rewritten(tmp_path: Path) -> None:
    memo = PassMemo(tmp_path)
    key = "a" * 64
    memo.remember(key)
    before = os.stat(memo.directory / key).st_mtime_ns
    assert memo.passed(key)
    assert os.stat(memo.directory / key).st_mtime_ns == before


def test_a_temporary_file_a_crashed_writer_left_is_removed_a_day_later(tmp_path: Path) -> None:
    memo = PassMemo(tmp_path)
    memo.remember("a" * 64)
    old, fresh = memo.directory / ".tmpold", memo.directory / ".tmpfresh"
    for path in (old, fresh):
        path.write_text("x", encoding="ascii")
    then = os.stat(old).st_mtime - 2 * 86_400
    os.utime(old, (then, then))
    memo.remember("b" * 64)
    assert not old.exists()
    assert fresh.exists()  # may be another run's write in progress


def test_a_verdict_another_process_removes_while_listed_does_not_stop_the_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = PassMemo(tmp_path)
    keys = [f"{n:064x}" for n in range(4)]
    for age, key in zip((30, 20, 10), keys[:3], strict=True):
        memo.remember(key)
        then = os.stat(memo.directory / key).st_mtime - age * 86_400
        os.utime(memo.directory / key, (then, then))
    monkeypatch.setattr("etl_core.contracts.memo.KEEP", 2)
    listed = os.scandir

    def racing(path: Path) -> Iterator[os.DirEntry[str]]:
        with listed(path) as scan:
            for entry in scan:
                if entry.name == keys[2]:  # pruned by another process once listed here
                    os.unlink(entry.path)
                yield entry

    monkeypatch.setattr(
        "etl_core.contracts.memo.os.scandir", lambda path: contextlib.closing(racing(path))
    )
    memo.remember(keys[3])

    assert sorted(path.name for path in memo.directory.iterdir()) == [keys[1], keys[3]]
