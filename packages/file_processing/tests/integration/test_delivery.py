"""A delivery opened end to end: OpenPGP around a zip around CSVs, as vendors send them."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.scripts import run_script
from file_processing.decrypt import Decryptor
from file_processing.delivery import Encryption, open_delivery, plaintext_name
from file_processing.errors import RefusedError
from file_processing.reasons import Reason

CSV = b"id,amount\n1,9.50\n2,3.25\n"


def make_zip(directory: Path) -> Path:
    path = directory / "pos_20261101.csv.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pos_20261101.csv", CSV)
    return path


def test_encrypted_zip_yields_its_members_under_the_plaintext_name(
    pgp: Any, tmp_path: Path, workdir: Path
) -> None:
    sealed = pgp.encrypt(make_zip(tmp_path), tmp_path / "pos_20261101.csv.zip.pgp")
    with Decryptor(pgp.recipient_secret) as decryptor:
        members = [
            (m.path, m.file.read_bytes())
            for m in open_delivery(sealed, name=sealed.name, decryptor=decryptor, workdir=workdir)
        ]
    assert members == [("pos_20261101.csv.zip/pos_20261101.csv", b"id,amount\n1,9.50\n2,3.25\n")]
    assert list(workdir.iterdir()) == []
    assert sealed.exists()


def test_encrypted_delivery_without_a_key_is_refused_as_no_key(
    pgp: Any, tmp_path: Path, workdir: Path
) -> None:
    sealed = pgp.encrypt(make_zip(tmp_path), tmp_path / "x.zip.gpg")
    with pytest.raises(RefusedError) as info:
        list(open_delivery(sealed, name=sealed.name, workdir=workdir))
    assert info.value.reason is Reason.PGP_NO_KEY


@pytest.mark.parametrize(
    ("declared", "encrypt"), [(Encryption.PGP, False), (Encryption.NONE, True)]
)
def test_declared_encryption_must_match_the_content(
    pgp: Any, tmp_path: Path, workdir: Path, declared: Encryption, encrypt: bool
) -> None:
    path = make_zip(tmp_path)
    if encrypt:
        path = pgp.encrypt(path, tmp_path / "x.zip.pgp")
    with pytest.raises(RefusedError) as info:
        list(open_delivery(path, name=path.name, encryption=declared, workdir=workdir))
    expected = Reason.FORMAT_MISMATCH if encrypt else Reason.PGP_NOT_ENCRYPTED
    assert info.value.reason is expected


def test_plaintext_name_drops_only_the_pgp_suffix() -> None:
    assert plaintext_name("pos.csv.zip.pgp") == "pos.csv.zip"
    assert plaintext_name("pos.csv.GPG") == "pos.csv"
    assert plaintext_name("pos.csv") == "pos.csv"
    assert plaintext_name(".pgp") == ".pgp"


def inspect(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_script("etl-file-processing", "inspect", *args, cwd=tmp_path, env=env)


def test_inspect_lists_members_of_an_encrypted_delivery(pgp: Any, tmp_path: Path) -> None:
    sealed = pgp.encrypt(make_zip(tmp_path), tmp_path / "pos.zip.pgp", armor=True)
    key = tmp_path / "vendor.key.asc"
    key.write_bytes(pgp.recipient_secret_armored)
    result = inspect(tmp_path, str(sealed), "--key", f"file:{key}", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["members"] == [
        {"member": "pos.zip/pos_20261101.csv", "bytes": len(CSV), "content": "plain"}
    ]


def test_inspect_of_a_zip_slip_exits_3_with_the_reason_code(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../etc/cron.d/evil", "* * * * * root true\n")
    result = inspect(tmp_path, str(evil), "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["reason"]["code"] == "archive.path_traversal"
    assert evil.exists()


def test_inspect_with_an_unset_key_variable_is_a_usage_error(tmp_path: Path) -> None:
    path = make_zip(tmp_path)
    result = inspect(tmp_path, str(path), "--key", "env:VENDOR_KEY_THAT_IS_NOT_SET")
    assert result.returncode == 2
    assert "VENDOR_KEY_THAT_IS_NOT_SET" in result.stderr


def test_reasons_lists_the_whole_taxonomy(tmp_path: Path) -> None:
    result = run_script("etl-file-processing", "reasons", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {code.value for code in Reason}
