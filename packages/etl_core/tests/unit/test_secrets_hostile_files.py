"""A ``file:`` secret reference naming something that is no regular file is refused at
once, naming the reference (never the value): a FIFO no longer waits for a writer for
ever, a directory or a device says what it is, a huge file is refused by its size before
a byte is read. Kubernetes and Docker secrets (regular files, often symlinks through
``..data`` to a regular file) keep working."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from etl_core.secrets import MAX_SECRET_FILE_BYTES, Secret, SecretUnavailableError

VALUE = "s3cr3t-Value-42"


def refusal(reference: str) -> SecretUnavailableError:
    with pytest.raises(SecretUnavailableError) as caught:
        Secret(reference).reveal()
    error = caught.value
    assert error.reference == reference
    assert str(error).startswith(f"secret {reference} is not available: ")
    return error


@pytest.mark.timeout(20)
def test_a_fifo_named_by_a_file_reference_is_refused_without_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db-password"
    os.mkfifo(path)

    error = refusal(f"file:{path}")

    assert "it is a FIFO (named pipe), not a regular file" in str(error)


def test_a_directory_named_by_a_file_reference_is_said_to_be_one(tmp_path: Path) -> None:
    error = refusal(f"file:{tmp_path}")

    assert "it is a directory, not a regular file" in str(error)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_named_by_a_file_reference_is_refused_as_no_regular_file(device: str) -> None:
    error = refusal(f"file:{device}")

    assert "it is a character device, not a regular file" in str(error)


def test_a_huge_secret_file_is_refused_by_its_size_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    with path.open("wb") as huge:  # sparse: 10 GiB said by its size, none of it written
        huge.write(VALUE.encode())
        huge.truncate(10 * 1024**3)

    error = refusal(f"file:{path}")

    said = str(error)
    assert f"it is {10 * 1024**3} bytes, larger than the 1MiB a secret file may be" in said
    assert VALUE not in said
    assert VALUE not in repr(pickle.loads(pickle.dumps(error)))


def test_a_secret_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big-key"
    path.write_bytes(b"k" * MAX_SECRET_FILE_BYTES)

    assert len(Secret(f"file:{path}").reveal()) == MAX_SECRET_FILE_BYTES


def test_a_kubernetes_style_symlinked_secret_file_is_read(tmp_path: Path) -> None:
    # What a mounted Secret volume looks like: name -> ..data/name, ..data -> ..<timestamp>
    timestamped = tmp_path / "..2026_12_07_10_00_00.123"
    timestamped.mkdir()
    (timestamped / "password").write_text(VALUE + "\n")
    (tmp_path / "..data").symlink_to(timestamped.name)
    (tmp_path / "password").symlink_to("..data/password")

    assert Secret(f"file:{tmp_path / 'password'}").reveal() == VALUE


@pytest.mark.timeout(20)
def test_a_symlink_to_a_fifo_is_refused_like_the_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "password").symlink_to("pipe")

    error = refusal(f"file:{tmp_path / 'password'}")

    assert "it is a FIFO (named pipe), not a regular file" in str(error)


def test_a_symlink_loop_is_refused_with_the_systems_reason(tmp_path: Path) -> None:
    (tmp_path / "password").symlink_to("password")

    error = refusal(f"file:{tmp_path / 'password'}")

    assert "cannot be read: Too many levels of symbolic links" in str(error)
