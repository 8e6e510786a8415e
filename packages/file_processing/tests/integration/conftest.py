"""Fixtures for unpack and decrypt tests: real CLI-made archives and real GnuPG keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_core.contracts import load_contracts
from etl_core.storage import LocalObjectStore, ObjectStore, open_store
from etl_core.testing.brokers import celery_broker
from etl_core.testing.fixtures import (
    postgres_server_url,
    postgres_url,
    refused_login_urls,
    s3_bucket,
    s3_endpoint,
)
from etl_core.testing.services import service_unavailable
from file_processing.checks import expression_problems
from file_processing.process import Processor
from file_processing.settings import FileProcessingSettings

# shared fixtures, re-exported for pytest
__all__ = [
    "celery_broker",
    "postgres_server_url",
    "postgres_url",
    "refused_login_urls",
    "s3_bucket",
    "s3_endpoint",
]

Run = Callable[..., subprocess.CompletedProcess[bytes]]


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        service_unavailable(tool, f"the {tool!r} command is not installed")
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Scratch directory handed to unpack/decrypt; tests assert it ends up empty."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def run() -> Run:
    """Run a command in a directory; a missing tool skips via service_unavailable.

    ``run("zip", "-q", "out.zip", "a.csv", cwd=d)`` runs one program;
    ``run("zip -q - a.csv | cat > s.zip", cwd=d, needs=("zip",))`` runs a bash pipeline.
    """

    def _run(
        *args: str | Path,
        cwd: Path,
        input: bytes | None = None,
        needs: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        if needs:
            for tool in needs:
                _require(tool)
            command = ["bash", "-o", "pipefail", "-c", str(args[0])]
        else:
            command = [_require(str(args[0])), *(str(a) for a in args[1:])]
        return subprocess.run(
            command, cwd=cwd, input=input, check=True, capture_output=True, timeout=120
        )

    return _run


# --------------------------------------------------------------------- GnuPG


@dataclass
class PgpKeys:
    """A throw-away keyring with the keys the decrypt tests need, and gpg helpers."""

    gpg: str
    home: Path
    recipient_secret: bytes
    recipient_secret_armored: bytes
    protected_secret: bytes
    vendor_public: bytes
    recipient_fpr: str
    vendor_fpr: str
    passphrase: str = "correct horse battery"

    def gpg_run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        completed = subprocess.run(
            [self.gpg, "--homedir", str(self.home), "--batch", "--yes", *args],
            input=input,
            check=check,
            capture_output=True,
            timeout=120,
        )
        return completed.stdout

    def encrypt(
        self,
        plain: Path,
        dest: Path,
        *,
        to: str = "recipient@example.test",
        armor: bool = False,
        sign_as: str | None = None,
        extra: Sequence[str] = (),
    ) -> Path:
        args = ["--trust-model", "always", "-r", to, "-o", str(dest), *extra]
        if armor:
            args.append("--armor")
        if sign_as is not None:
            args += ["-u", sign_as, "--sign"]
        self.gpg_run(*args, "--encrypt", str(plain))
        return dest

    def encrypt_zeros(self, dest: Path, size: int) -> Path:
        """Encrypt ``size`` zero bytes at the top compression level: a decompression bomb."""
        process = subprocess.Popen(
            [
                self.gpg,
                "--homedir",
                str(self.home),
                "--batch",
                "--yes",
                "--trust-model",
                "always",
                "--compress-level",
                "9",
                "-r",
                "recipient@example.test",
                "-o",
                str(dest),
                "--encrypt",
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None
        block = bytes(1024 * 1024)
        for _ in range(size // len(block)):
            process.stdin.write(block)
        process.stdin.close()
        assert process.wait(timeout=120) == 0
        return dest


def _fingerprint(gpg: str, home: Path, uid: str) -> str:
    listing = subprocess.run(
        [gpg, "--homedir", str(home), "--with-colons", "--list-keys", uid],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="session")
def pgp() -> Iterator[PgpKeys]:
    """Generate recipient, stranger, vendor, impostor and passphrase-protected keys once."""
    gpg = shutil.which("gpg")
    if gpg is None:
        service_unavailable("gpg", "GnuPG is not installed")
    home = Path(tempfile.mkdtemp(prefix="gpgt-"))
    base = [gpg, "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback"]

    def call(*args: str) -> bytes:
        return subprocess.run([*base, *args], check=True, capture_output=True, timeout=120).stdout

    try:
        for uid in ("Recipient", "Stranger", "Vendor", "Impostor"):
            call(
                "--passphrase",
                "",
                "--quick-gen-key",
                f"{uid} <{uid.lower()}@example.test>",
                "future-default",
                "default",
                "never",
            )
        keys = PgpKeys(
            gpg=gpg,
            home=home,
            recipient_secret=call(
                "--passphrase", "", "--export-secret-keys", "recipient@example.test"
            ),
            recipient_secret_armored=call(
                "--passphrase", "", "--armor", "--export-secret-keys", "recipient@example.test"
            ),
            protected_secret=b"",
            vendor_public=call("--armor", "--export", "vendor@example.test"),
            recipient_fpr=_fingerprint(gpg, home, "recipient@example.test"),
            vendor_fpr=_fingerprint(gpg, home, "vendor@example.test"),
        )
        call(
            "--passphrase",
            keys.passphrase,
            "--quick-gen-key",
            "Protected <protected@example.test>",
            "future-default",
            "default",
            "never",
        )
        keys.protected_secret = call(
            "--passphrase",
            keys.passphrase,
            "--armor",
            "--export-secret-keys",
            "protected@example.test",
        )
        yield keys
    finally:
        gpgconf = shutil.which("gpgconf")
        if gpgconf is not None:
            subprocess.run(
                [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def plain_csv(tmp_path: Path) -> Path:
    """A small CSV file to encrypt."""
    path = tmp_path / "orders.csv"
    path.write_bytes(b"id,amount\n" + b"".join(b"%d,%d.50\n" % (i, i) for i in range(2000)))
    return path


# ------------------------------------------------------------ processing lane

ORDERS_CONTRACT = """
dataset = "orders"
source = "vendor"
pattern = "orders_{date:%Y%m%d}.csv*"
format = "csv"
packing = "auto"
encryption = "auto"
key = "env:TEST_ORDERS_KEY"
max_rejected_fraction = "MAX_REJECTED"

[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal"
precision = 12
scale = 2

[[checks]]
kind = "unique"
column = "id"

[[checks]]
kind = "range"
column = "amount"
min = 0
max = 1000
"""

CHECKED_CONTRACT = """
dataset = "ledger"
source = "bank"
pattern = "ledger_{date:%Y-%m-%d}.csv"
packing = "none"
encryption = "none"

[control]
checksum = "sha256"

[[columns]]
name = "id"
type = "int"
"""


FILE_PROCESSING = Path(sys.executable).parent / "etl-file-processing"


@dataclass
class Lane:
    """A store, a config directory with two contracts, and ways to deliver and process."""

    store: ObjectStore
    config_dir: Path
    tmp: Path

    def deliver(self, name: str, data: bytes | Path, source: str = "vendor") -> str:
        key = f"landing/{source}/{name}"
        body = data.read_bytes() if isinstance(data, Path) else data
        self.store.write_bytes(key, body)
        return key

    def processor(self, **settings: object) -> Processor:
        contracts = load_contracts(self.config_dir, validators=[expression_problems])
        values: dict[str, object] = {"work_dir": self.tmp / "scratch", **settings}
        (self.tmp / "scratch").mkdir(exist_ok=True)
        return Processor(
            self.store,
            contracts,
            FileProcessingSettings(**values),
            run_id="test-run",  # type: ignore[arg-type]
        )

    def keys(self, prefix: str) -> list[str]:
        return sorted(info.key for info in self.store.list(prefix))

    def cli(
        self, *args: str, drop: Sequence[str] = (), **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``etl-file-processing --config-dir <this lane's> *args`` on this lane's store, JSON
        logs, with ``env`` set and the variables in ``drop`` unset; its exit code is returned."""
        environment = {k: v for k, v in os.environ.items() if k not in drop}
        environment.update(ETL_STORAGE_URL=self.store.url, ETL_LOG_FORMAT="json", **env)
        command = [str(FILE_PROCESSING), "--config-dir", str(self.config_dir), *args]
        return subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=120, check=False
        )


def orders_csv(rows: int = 20, *, bad_amounts: int = 0) -> bytes:
    """``id,amount`` rows; the last ``bad_amounts`` rows break the range check."""
    lines = [b"id,amount"]
    for i in range(rows):
        amount = b"5000.00" if i >= rows - bad_amounts else b"%d.25" % (i % 900)
        lines.append(b"%d,%s" % (i, amount))
    return b"\n".join(lines) + b"\n"


def _lane(store: ObjectStore, tmp_path: Path) -> Lane:
    if isinstance(store, LocalObjectStore):
        store.root.mkdir(parents=True, exist_ok=True)  # the CLI opens existing stores only
    config = tmp_path / "config"
    (config / "datasets").mkdir(parents=True)
    (config / "datasets" / "orders.toml").write_text(ORDERS_CONTRACT.replace("MAX_REJECTED", "10%"))
    (config / "datasets" / "ledger.toml").write_text(CHECKED_CONTRACT)
    return Lane(store, config, tmp_path)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lane(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lane]:
    """The processing lane on the local store and on S3 (moto's server)."""
    if request.param == "local":
        store = open_store(tmp_path / "lake")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        store = open_store(f"s3://{bucket}/fp-{tmp_path.name}", endpoint_url=endpoint)
    with store:
        yield _lane(store, tmp_path)


@pytest.fixture
def local_lane(tmp_path: Path) -> Iterator[Lane]:
    """The processing lane on a local store (for the CLI, run as a subprocess)."""
    with open_store(tmp_path / "lake") as store:
        yield _lane(store, tmp_path)


@pytest.fixture
def orders() -> Callable[..., bytes]:
    """Builds an ``orders`` CSV: ``orders(rows, bad_amounts=n)``."""
    return orders_csv
