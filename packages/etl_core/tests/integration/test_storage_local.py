"""What only the local directory backend does: files, partial files, directories."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from etl_core.errors import InvalidKeyError, StorageError
from etl_core.storage import LocalObjectStore, StagedFile, durability, etags, local, open_store
from etl_core.storage.local import PARTIAL_FILE_PREFIX
from etl_core.threads import ContextThreadPoolExecutor


@pytest.fixture
def lake(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "lake")


def test_objects_are_plain_files_below_the_root(lake: LocalObjectStore) -> None:
    lake.write_bytes("landing/acme/a.csv", b"x")

    assert (lake.root / "landing" / "acme" / "a.csv").read_bytes() == b"x"


def test_in_progress_write_is_a_hidden_partial_file_in_the_target_directory(
    lake: LocalObjectStore,
) -> None:
    with lake.open_write("dir/obj") as writer:
        writer.write(b"data")
        names = os.listdir(lake.root / "dir")
        assert len(names) == 1
        assert names[0].startswith(PARTIAL_FILE_PREFIX)
        assert list(lake.list()) == []

    assert os.listdir(lake.root / "dir") == ["obj"]


def test_failed_write_removes_its_partial_file(lake: LocalObjectStore) -> None:
    def write_then_fail() -> None:
        with lake.open_write("dir/obj") as writer:
            writer.write(b"data")
            assert len(os.listdir(lake.root / "dir")) == 1
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()

    assert os.listdir(lake.root / "dir") == []


def test_leftover_partial_files_from_a_crash_are_not_listed(lake: LocalObjectStore) -> None:
    lake.write_bytes("dir/real", b"r")
    (lake.root / "dir" / f"{PARTIAL_FILE_PREFIX}deadbeef").write_bytes(b"half")

    assert [i.key for i in lake.list()] == ["dir/real"]


def test_keys_named_like_partial_files_are_refused(lake: LocalObjectStore) -> None:
    key = f"dir/{PARTIAL_FILE_PREFIX}x"

    with pytest.raises(InvalidKeyError, match="reserved"):
        lake.write_bytes(key, b"x")


def test_written_files_get_umask_permissions_not_private_temp_ones(
    lake: LocalObjectStore,
) -> None:
    previous = os.umask(0o022)
    try:
        lake.write_bytes("shared.csv", b"x")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((lake.root / "shared.csv").stat().st_mode) == 0o644


def test_a_key_cannot_be_both_an_object_and_a_folder(lake: LocalObjectStore) -> None:
    lake.write_bytes("a/b", b"1")

    with pytest.raises(StorageError, match="'a'") as folder:
        lake.write_bytes("a", b"2")
    with pytest.raises(StorageError, match="'a/b/c'") as below:
        lake.write_bytes("a/b/c", b"3")

    assert "same name" in str(folder.value)
    assert "same name" in str(below.value)
    assert [i.key for i in lake.list()] == ["a/b"]


def test_deleting_the_last_object_prunes_empty_directories(lake: LocalObjectStore) -> None:
    lake.write_bytes("x/y/z/obj", b"1")
    lake.write_bytes("x/keep", b"2")

    lake.delete("x/y/z/obj")

    assert not (lake.root / "x" / "y").exists()
    assert (lake.root / "x" / "keep").exists()


def test_move_is_a_rename_that_prunes_the_source_directory(lake: LocalObjectStore) -> None:
    lake.write_bytes("tmp/run-1/part-0", b"rows")
    inode = (lake.root / "tmp" / "run-1" / "part-0").stat().st_ino

    lake.move("tmp/run-1/part-0", "curated/ds/part-0")

    assert (lake.root / "curated" / "ds" / "part-0").stat().st_ino == inode
    assert not (lake.root / "tmp").exists()


def test_delete_of_a_folder_name_deletes_nothing(lake: LocalObjectStore) -> None:
    lake.write_bytes("dir/obj", b"1")

    lake.delete("dir")

    assert lake.exists("dir/obj")


def test_files_with_names_that_are_not_keys_are_skipped(lake: LocalObjectStore) -> None:
    lake.write_bytes("ok", b"1")
    (lake.root / "bad\\name").write_bytes(b"2")

    assert [i.key for i in lake.list()] == ["ok"]


def test_missing_root_lists_nothing_and_is_created_on_first_write(tmp_path: Path) -> None:
    lake = LocalObjectStore(tmp_path / "not" / "yet")

    assert list(lake.list()) == []
    lake.write_bytes("first", b"1")
    assert (tmp_path / "not" / "yet" / "first").exists()


def test_relative_path_opens_an_absolute_local_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lake = open_store("data/lake")
    monkeypatch.chdir("/")

    lake.write_bytes("k", b"v")

    assert isinstance(lake, LocalObjectStore)
    assert lake.url == (tmp_path / "data" / "lake").as_uri()
    assert (tmp_path / "data" / "lake" / "k").read_bytes() == b"v"


def test_file_url_with_spaces_round_trips_through_url_for(tmp_path: Path) -> None:
    lake = open_store((tmp_path / "my lake").as_uri())
    lake.write_bytes("zone a/file 1.csv", b"x")

    child = open_store(lake.url_for("zone a"))

    assert [i.key for i in child.list()] == ["file 1.csv"]


def test_symlinked_directories_are_not_followed(lake: LocalObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    lake.write_bytes("inside", b"i")
    (lake.root / "link").symlink_to(outside, target_is_directory=True)

    assert [i.key for i in lake.list()] == ["inside"]


def test_etag_is_the_content_md5_and_follows_in_place_edits(lake: LocalObjectStore) -> None:
    lake.write_bytes("landing/a.csv", b"id\n1\n")
    first = lake.head("landing/a.csv").etag
    assert first == hashlib.md5(b"id\n1\n").hexdigest()
    path = lake.root / "landing" / "a.csv"
    path.write_bytes(b"id\n2\n")  # same size, edited behind the store's back
    os.utime(path, ns=(1, 1_000_000_000))
    assert lake.head("landing/a.csv").etag == hashlib.md5(b"id\n2\n").hexdigest()
    assert [i.etag for i in lake.list("landing/")] == [hashlib.md5(b"id\n2\n").hexdigest()]


def test_listing_does_not_rehash_unchanged_files(lake: LocalObjectStore) -> None:
    lake.write_bytes("landing/big.bin", b"x" * 4096)
    path = lake.root / "landing" / "big.bin"
    try:
        recorded = os.getxattr(path, "user.etl.md5")
    except OSError:
        pytest.skip("this filesystem has no user extended attributes; ETags are recomputed")
    assert recorded.decode().endswith(lake.head("landing/big.bin").etag)


def test_deferred_sync_publishes_every_write_together_when_the_block_ends(
    lake: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    if durability._syncfs() is None:
        pytest.skip("no syncfs on this system; each file is flushed on its own")
    monkeypatch.setattr(durability, "_syncfs", lambda: lambda fd: flushed.append(fd) or 0)
    monkeypatch.setattr(local.os, "fsync", lambda fd: pytest.fail("a file flushed on its own"))
    with lake.deferred_sync():
        with ContextThreadPoolExecutor(2, "test") as pool:
            for i in range(4):
                pool.submit(lake.write_bytes, f"a/part-{i}.csv", b"x").result()
        lake.write_bytes("b/other.csv", b"y")
        assert not lake.exists("a/part-3.csv")  # nothing visible before the block ends
        assert flushed == []
    assert len(flushed) == 2  # the bytes, then the renames: one syncfs each
    assert [lake.read_bytes(f"a/part-{i}.csv") for i in range(4)] == [b"x"] * 4
    assert lake.head("b/other.csv").etag == hashlib.md5(b"y").hexdigest()
    assert not list((lake.root / "a").glob(f"{PARTIAL_FILE_PREFIX}*"))


def test_deferred_sync_without_syncfs_flushes_each_file_and_directory(
    lake: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: list[str] = []
    directories: list[Path] = []
    monkeypatch.setattr(durability, "_syncfs", lambda: None)
    monkeypatch.setattr(durability, "fsync_path", lambda path: files.append(path.parent.name))
    monkeypatch.setattr(durability, "fsync_directory", directories.append)
    with lake.deferred_sync():
        lake.write_bytes("a/one.csv", b"1")
        lake.write_bytes("a/two.csv", b"2")
    assert files == ["a", "a"]
    assert directories == [lake.root / "a"]
    assert lake.read_bytes("a/two.csv") == b"2"


def test_a_failed_deferred_block_publishes_nothing_and_leaves_no_partial_file(
    lake: LocalObjectStore,
) -> None:
    def deliver() -> None:
        with lake.deferred_sync():
            lake.write_bytes("a/one.csv", b"1")
            raise RuntimeError("the delivery failed")

    with pytest.raises(RuntimeError):
        deliver()
    assert not lake.exists("a/one.csv")
    assert list((lake.root / "a").iterdir()) == []


def test_deferred_sync_does_not_defer_another_threads_writes(lake: LocalObjectStore) -> None:
    with lake.deferred_sync():
        outsider = threading.Thread(target=lake.write_bytes, args=("c/alone.csv", b"z"))
        outsider.start()
        outsider.join(timeout=10)
        assert lake.read_bytes("c/alone.csv") == b"z"  # visible at once, not deferred


def test_move_in_moves_the_file_itself_as_if_written_now(
    lake: LocalObjectStore, tmp_path: Path
) -> None:
    lake.write_bytes("seed.txt", b"")  # the store's root exists, on tmp_path's filesystem
    source = tmp_path / "member.csv"
    source.write_bytes(b"id\n1\n")
    source.chmod(0o600)
    os.utime(source, (0, 0))
    inode = source.stat().st_ino
    lake.move_in(source, "validated/x/member.csv")
    moved = lake.root / "validated" / "x" / "member.csv"
    assert moved.stat().st_ino == inode  # no second copy of the bytes
    assert stat.S_IMODE(moved.stat().st_mode) == stat.S_IMODE(
        (lake.root / "seed.txt").stat().st_mode
    )
    assert lake.head("validated/x/member.csv").last_modified.year > 1970
    assert lake.head("validated/x/member.csv").etag == hashlib.md5(b"id\n1\n").hexdigest()
    assert not list(moved.parent.glob(f"{PARTIAL_FILE_PREFIX}*"))


def _xattrs_or_skip(path: Path) -> None:
    try:
        os.setxattr(path, "user.etl.probe", b"1")
    except OSError:
        pytest.skip("this filesystem has no user extended attributes; ETags are recomputed")


def test_move_in_takes_the_etag_computed_while_the_file_was_staged(
    lake: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "member.csv"
    with StagedFile(source) as staged:
        staged.write(b"id\n")
        staged.write(b"1\n")
    _xattrs_or_skip(source)
    assert staged.etag == hashlib.md5(b"id\n1\n").hexdigest()
    monkeypatch.setattr(local, "_hash_file", lambda stream: pytest.fail("read again"))
    assert lake.move_in(source, "validated/x/member.csv") == 5
    assert lake.head("validated/x/member.csv").etag == staged.etag


def test_a_staged_file_changed_after_it_was_written_is_hashed_again_when_moved_in(
    lake: LocalObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "member.csv"
    with StagedFile(source) as staged:
        staged.write(b"id\n1\n")
    with source.open("ab") as edit:
        edit.write(b"2\n")
    os.utime(source, ns=(0, source.stat().st_mtime_ns + 1))  # whatever the clock's grain
    lake.move_in(source, "validated/x/member.csv")
    assert lake.head("validated/x/member.csv").etag == hashlib.md5(b"id\n1\n2\n").hexdigest()


def test_a_staged_file_whose_writer_failed_records_no_etag(tmp_path: Path) -> None:
    source = tmp_path / "member.csv"

    def unpack() -> None:
        with StagedFile(source) as staged:
            staged.write(b"id\n1\n" * 100_000)
            raise RuntimeError("the unpacker refused it")

    with pytest.raises(RuntimeError):
        unpack()
    with source.open("rb") as stream:
        assert etags.recorded_etag(stream.fileno(), os.fstat(stream.fileno())) is None


def test_a_staged_file_that_cannot_be_written_says_so_to_its_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(etags, "_write_all", full)
    source = tmp_path / "member.csv"

    def unpack() -> None:
        with StagedFile(source) as staged:
            for _ in range(100):  # more than the queue holds: the writer never blocks
                staged.write(b"x" * 1024)

    with pytest.raises(OSError, match="No space left"):
        unpack()
    with source.open("rb") as stream:
        assert etags.recorded_etag(stream.fileno(), os.fstat(stream.fileno())) is None


def test_a_staged_file_is_never_overwritten(tmp_path: Path) -> None:
    source = tmp_path / "member.csv"
    source.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        StagedFile(source)
    assert source.read_bytes() == b"kept"


def test_move_in_copies_a_file_that_has_another_name_too(
    lake: LocalObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "member.csv"
    source.write_bytes(b"id\n2\n")
    os.link(source, tmp_path / "other-name.csv")
    lake.move_in(source, "validated/x/member.csv")
    assert not source.exists()
    other = tmp_path / "other-name.csv"
    assert other.read_bytes() == b"id\n2\n"
    moved = lake.root / "validated" / "x" / "member.csv"
    assert moved.stat().st_ino != other.stat().st_ino  # the store's object is its own
    assert moved.read_bytes() == b"id\n2\n"


def test_a_file_it_may_not_read_is_listed_without_its_hash_and_its_read_names_it(
    lake: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on S3, listing needs no read right: one unreadable file (a vendor's mode 0600)
    failed the whole listing, and with it every scan or inventory of the prefix."""
    lake.write_bytes("landing/v/a.csv", b"a")
    lake.write_bytes("landing/v/b.csv", b"bb")
    opened = LocalObjectStore._open_object

    def denied(store: LocalObjectStore, key: str, path: Path) -> object:
        if key == "landing/v/a.csv":  # root reads a 0o000 file: the refusal a user gets
            error = PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            raise local._storage_error(error, "read", key, store.url) from error
        return opened(store, key, path)

    monkeypatch.setattr(LocalObjectStore, "_open_object", denied)
    listed = {info.key: (info.size, info.etag) for info in lake.list("landing/")}
    assert listed == {
        "landing/v/a.csv": (1, local.UNREADABLE_ETAG),
        "landing/v/b.csv": (2, hashlib.md5(b"bb").hexdigest()),
    }
    with pytest.raises(StorageError, match=r"cannot read 'landing/v/a\.csv' .*Permission denied"):
        lake.read_bytes("landing/v/a.csv")


def test_key_at_reads_a_parent_segment_as_the_filesystem_does_after_a_symbolic_link(
    lake: LocalObjectStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside" / "deep"
    outside.mkdir(parents=True)
    (lake.root / "landing").mkdir(parents=True)
    (lake.root / "landing" / "esc").symlink_to(outside)
    # the OS reads landing/esc/../../x as outside/../x: no object of the store
    assert lake.key_at(f"{lake.root}/landing/esc/../../x") is None
    assert lake.key_at(f"{lake.root.as_uri()}/landing/esc/../../x") is None
    # without a link on the way, a parent segment names what it names
    assert lake.key_at(f"{lake.root}/landing/v/../w/x.csv") == "landing/w/x.csv"


@pytest.mark.parametrize("name", ["a#b.csv", "a?b.csv", "a?.csv"])
def test_key_at_reads_a_file_url_typed_unencoded_whole(lake: LocalObjectStore, name: str) -> None:
    assert lake.key_at(f"file://{lake.root}/landing/v/{name}") == f"landing/v/{name}"
    assert lake.key_at(lake.url_for(f"landing/v/{name}")) == f"landing/v/{name}"
