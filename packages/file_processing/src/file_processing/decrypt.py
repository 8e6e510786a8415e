"""OpenPGP decryption through GnuPG, with the plaintext withheld until gpg vouches for it.

A :class:`Decryptor` imports the platform's secret key (and optionally the
vendors' signing keys) into a private, temporary keyring. :meth:`Decryptor.decrypt`
streams a message through ``gpg --decrypt`` into a private temporary file,
counting the plaintext against :class:`~file_processing.limits.UnpackLimits`
(GnuPG itself sets no decompression limit), and hands the plaintext over only
when gpg's status lines say the message was decrypted whole with its integrity
check passed. Everything else is a :class:`~file_processing.errors.RefusedError`
with a ``pgp.*`` reason code.

Why gpg is run directly for decryption: python-gnupg (used here for key import
and the start-up probe) buffers plaintext in memory unless told to write a file,
and gives no handle on the gpg process, so it cannot stop gpg once the plaintext
passes a limit. Running gpg with ``--status-fd`` on a pipe keeps the same status
protocol while letting this module count every byte and kill gpg at the limit.
gpg's own ``--max-output`` is not used: when it trips, gpg still reports
``DECRYPTION_OKAY`` and ``GOODMDC`` for a plaintext it cut short.
"""

from __future__ import annotations

import contextvars
import errno
import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast, get_args

import gnupg

from etl_core.faults import Step, fault_point
from etl_core.resources import Closeable
from etl_core.scratch import make_scratch
from file_processing.errors import GpgError, RefusedError
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.unpack import CHUNK_SIZE, DEFAULT_LIMITS

__all__ = ["DecryptResult", "Decryptor", "SignaturePolicy"]

SignaturePolicy = Literal["required", "if_present", "ignore"]
"""Whether messages must be signed by a vendor key (see :class:`Decryptor`)."""
_POLICIES: tuple[str, ...] = get_args(SignaturePolicy)

logger = logging.getLogger(__name__)

_PROBE = b"file_processing decryptor self-test\n"
_PROBE_LIMITS = UnpackLimits(max_total_bytes=1024, max_member_bytes=1024)
_MAX_STATUS_LINES = 10_000
_MAX_STATUS_LINE = 64 * 1024
_STDERR_TAIL = 64 * 1024
_JOIN_SECONDS = 60.0
_MAX_PASSPHRASE = 4096
_PIPE_SLICE = 64 * 1024
_ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----"
_ARMOR_END = b"-----END PGP MESSAGE-----"
_ARMOR_PROBE = 256
_AGENT_SOCKET = "S.gpg-agent"
_AGENT_SOCKET_DIR = Path(f"/run/user/{os.getuid()}")
"""Where gpg puts the sockets of a keyring when the directory exists (not in the keyring)."""
_AGENT_TIMEOUT = 5.0
_GPG_ERR_BAD_PASSPHRASE = 11
_FAILURE_KEYWORDS = ("DECRYPTION_FAILED", "ERROR", "FAILURE", "NODATA", "BADMDC")
_BAD_SIGNATURE_KEYWORDS = ("BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG")
_SIGNATURE_KEYWORDS = ("NEWSIG", "GOODSIG", "VALIDSIG", "ERRSIG", *_BAD_SIGNATURE_KEYWORDS)
_SIGNAL_CAUGHT = re.compile(r"gpg: signal (\w+) caught")
_TRUNCATION_HINTS = (
    "problem reading source",
    "read error",
    "pending bytes",
    "premature",
    "unexpected end",
)


@dataclass(frozen=True)
class DecryptResult:
    """What a successful decryption produced.

    Attributes:
        size: Plaintext bytes written.
        recipient: Fingerprint of the secret key that decrypted the message.
        signer: Primary fingerprint of the vendor key whose signature was verified,
            or None when no vendor keys are configured.
        literal_name: File name the sender embedded in the message (informative only).
    """

    size: int
    recipient: str | None
    signer: str | None
    literal_name: str | None


class Decryptor(Closeable):
    """Decrypts OpenPGP messages with one secret key held in a temporary keyring.

    Use it as a context manager (or call :meth:`close`): closing stops the
    keyring's gpg-agent and deletes the keyring and scratch files.

    Args:
        secret_key: The secret key, ASCII-armoured or binary, as bytes (the caller
            resolves ``env:``/``file:`` secret references).
        passphrase: The key's passphrase, when it has one.
        signer_keys: Vendor public keys whose signatures are accepted.
        signature: The signature policy: ``required`` (every message carries a good
            signature from a signer key, else ``pgp.unsigned``/``pgp.bad_signature``),
            ``if_present`` (unsigned messages pass; a signature that is present must
            be good and from a signer key) or ``ignore`` (signatures are not
            looked at, except that a signature its content does not match, BADSIG,
            is always refused). Default: ``required`` with signer keys, else ``ignore``.
        gpg_binary: The gpg executable to run.
        workdir: Directory for the plaintext scratch files (default: the system's).

    Raises:
        GpgError: gpg is missing, or the key material is unusable (no secret key,
            no encryption subkey, wrong or missing passphrase).
    """

    def __init__(
        self,
        secret_key: bytes,
        *,
        passphrase: str | None = None,
        signer_keys: Sequence[bytes] = (),
        signature: SignaturePolicy | None = None,
        gpg_binary: str = "gpg",
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_key_bytes("secret_key", secret_key)
        self.signature: SignaturePolicy = _policy(signature, bool(signer_keys))
        if passphrase is not None and (len(passphrase) > _MAX_PASSPHRASE or "\n" in passphrase):
            raise GpgError(f"passphrase: must be one line of at most {_MAX_PASSPHRASE} characters")
        for index, key in enumerate(signer_keys):
            _check_key_bytes(f"signer_keys[{index}]", key)
        binary = shutil.which(gpg_binary)
        if binary is None:
            raise GpgError(f"gpg_binary: GnuPG executable {gpg_binary!r} was not found on PATH")
        self._binary = binary
        self._passphrase = passphrase
        self._env = _gpg_environment()
        # A short path under the system temp dir: gpg-agent's socket path must fit. It
        # holds the secret key: tagged, so the next run removes it if this one is killed.
        self._home = make_scratch(None, "gpg")
        self._scratch = make_scratch(workdir, "decrypt")
        self._finalizer = weakref.finalize(
            self, _remove_keyring, self._home, self._scratch, _gpgconf_for(binary), self._env
        )
        try:
            self._gpg = self._open_keyring()
            self.fingerprint = self._import_secret(secret_key)
            self.signer_fingerprints = self._import_signers(signer_keys)
            self._probe()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the keyring's gpg-agent and delete the keyring and scratch files."""
        self._finalizer()

    @property
    def keyring(self) -> Path:
        """The temporary GNUPGHOME (mode 0700), deleted by :meth:`close`."""
        return self._home

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return not self._finalizer.alive

    # ------------------------------------------------------------- decrypt

    def decrypt(
        self,
        source: BinaryIO | str | os.PathLike[str],
        output: BinaryIO | str | os.PathLike[str],
        *,
        limits: UnpackLimits = DEFAULT_LIMITS,
        name: str | None = None,
        signature: SignaturePolicy | None = None,
        observe: Callable[[bytes], None] | None = None,
    ) -> DecryptResult:
        """Decrypt one message (binary or ASCII-armoured) into ``output``.

        Nothing reaches ``output`` unless the whole message decrypted with a good
        integrity check (and, when vendor keys are configured, a good signature):
        a stream receives the plaintext only then; a path is created only then.

        Args:
            source: The encrypted message: a path or a binary stream (not closed).
            output: Where the plaintext goes: a path (replaced atomically) or a
                binary stream (written from its current position, not closed).
            limits: ``max_total_bytes`` caps the plaintext; ``max_ratio`` (past
                ``ratio_floor_bytes``) caps plaintext per message byte.
            name: The delivery's name, carried into refusals for context.
            signature: This message's signature policy, instead of the decryptor's
                (a layer of a message encrypted twice).
            observe: Called with each chunk of plaintext as gpg writes it, before gpg
                vouched for it, for work done ahead (inflating a zip as it arrives):
                it must not raise, and what it makes counts only once this returns.

        Raises:
            RefusedError: The message was refused; ``reason`` is a ``pgp.*`` code.
            GpgError: gpg could not run or the key could not be unlocked.
        """
        if self.closed:
            raise GpgError("this Decryptor is closed")
        with ExitStack() as stack:
            stream = _open_source(source, stack)
            fd, scratch_name = tempfile.mkstemp(dir=self._scratch, suffix=".plain")
            scratch = Path(scratch_name)
            stack.callback(scratch.unlink, missing_ok=True)
            with open(fd, "wb") as sink:
                outcome = self._run(stream, sink, limits, fault=Step.DECRYPT, observe=observe)
            policy = _policy(signature, bool(self.signer_fingerprints), self.signature)
            verdict = _judge(outcome, self.signer_fingerprints, policy)
            if verdict.reason is not None:
                raise RefusedError(verdict.reason, verdict.message, member=name)
            _publish(scratch, output)
            return DecryptResult(
                size=outcome.size,
                recipient=verdict.recipient,
                signer=verdict.signer,
                literal_name=verdict.literal_name,
            )

    # ------------------------------------------------------------ keyring

    def _open_keyring(self) -> gnupg.GPG:
        try:
            return gnupg.GPG(gpgbinary=self._binary, gnupghome=str(self._home), env=self._env)
        except (OSError, ValueError) as exc:
            raise GpgError(f"cannot run GnuPG ({self._binary}): {exc}") from exc

    def _import_secret(self, secret_key: bytes) -> str:
        result = self._gpg.import_keys(bytes(secret_key))
        secrets = self._gpg.list_keys(secret=True)
        if not result.sec_imported or not secrets:
            raise GpgError(
                "secret_key: the key material holds no OpenPGP secret key "
                f"(gpg import: {_import_summary(result)})"
            )
        fingerprint: str = secrets[0]["fingerprint"]
        return fingerprint

    def _import_signers(self, signer_keys: Sequence[bytes]) -> frozenset[str]:
        fingerprints: set[str] = set()
        for index, key in enumerate(signer_keys):
            result = self._gpg.import_keys(bytes(key))
            imported = {fpr for fpr in result.fingerprints if fpr}
            if not imported:
                raise GpgError(
                    f"signer_keys[{index}]: holds no OpenPGP public key "
                    f"(gpg import: {_import_summary(result)})"
                )
            fingerprints |= imported
        return frozenset(fingerprints)

    def _probe(self) -> None:
        """Encrypt and decrypt a few bytes, so unusable key material fails at start-up."""
        encrypted = self._gpg.encrypt(_PROBE, self.fingerprint, always_trust=True, armor=False)
        if not encrypted.ok:
            raise GpgError(
                f"secret_key: cannot encrypt to key {self.fingerprint} "
                f"(no encryption subkey?): {encrypted.status}"
            )
        sink = io.BytesIO()
        outcome = self._run(io.BytesIO(encrypted.data), sink, _PROBE_LIMITS)
        verdict = _judge(outcome, frozenset(), "ignore")
        if verdict.reason is not None or sink.getvalue() != _PROBE:
            raise GpgError(f"secret_key: self-test decryption failed: {verdict.message}")

    # ------------------------------------------------------------- process

    def _run(
        self,
        source: IO[bytes],
        sink: IO[bytes],
        limits: UnpackLimits,
        *,
        fault: Step | None = None,
        observe: Callable[[bytes], None] | None = None,
    ) -> _Outcome:
        """Run ``gpg --decrypt``, copying its plaintext to ``sink`` within ``limits``
        (``fault``: the test-only fault point reached once plaintext flows; ``observe``:
        shown each chunk copied)."""
        status_read, status_write = os.pipe()
        child_fds = [status_write]
        args = [
            self._binary,
            "--homedir",
            str(self._home),
            "--batch",
            "--no-tty",
            "--yes",
            "--status-fd",
            str(status_write),
            "--no-auto-key-retrieve",
            "--trust-model",
            "always",
            "--pinentry-mode",
            "loopback",
        ]
        try:
            if self._passphrase is not None:
                args += ["--passphrase-fd", str(_passphrase_pipe(self._passphrase, child_fds))]
            args += ["--output", "-", "--decrypt"]
            process = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=child_fds,
                env=self._env,
                # Its own session: a Ctrl-C or SIGTERM sent to the job's process group is
                # this process's to handle, never a "signal caught" failure read as a verdict.
                start_new_session=True,
            )
        except OSError as exc:
            os.close(status_read)
            raise GpgError(f"cannot start gpg: {exc}") from exc
        finally:
            for fd in child_fds:
                os.close(fd)
        return _Session(process, status_read, source, sink, limits, fault, observe).wait()


@dataclass
class _Outcome:
    status: list[tuple[str, tuple[str, ...]]]
    stderr: str
    size: int
    exceeded: str | None
    unterminated_armor: bool = False
    returncode: int | None = None


class _Session:
    """One gpg process: a feeder thread, status and stderr readers, plaintext on this thread."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        status_fd: int,
        source: IO[bytes],
        sink: IO[bytes],
        limits: UnpackLimits,
        fault: Step | None = None,
        observe: Callable[[bytes], None] | None = None,
    ) -> None:
        self.process = process
        self.fault = fault
        self.observe = observe
        self.source = source
        self.sink = sink
        self.limits = limits
        self.fed = 0
        self.head = b""
        self.tail = b""
        self.fed_all = False
        self.feed_error: BaseException | None = None
        self.status: list[tuple[str, tuple[str, ...]]] = []
        self.stderr: deque[bytes] = deque()
        # Each thread runs in a copy of the caller's context: its log lines (gpg status at
        # DEBUG) carry the key and dataset being processed.
        self.threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
            for run in (self._feed, partial(self._read_status, status_fd), self._read_stderr)
        ]

    def wait(self) -> _Outcome:
        for thread in self.threads:
            thread.start()
        size, exceeded = 0, None
        try:
            size, exceeded = self._copy_plaintext()
            if exceeded is not None:
                self.process.kill()
        except BaseException:
            self.process.kill()
            raise
        finally:
            self.process.wait()
            for thread in self.threads:
                thread.join(_JOIN_SECONDS)
        if self.feed_error is not None:
            raise self.feed_error
        stderr = b"".join(self.stderr).decode("utf-8", "replace")
        armored = self.head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(_ARMOR_BEGIN)
        # Only judged when gpg took the whole input: it may stop early on a bad message.
        unterminated = armored and self.fed_all and _ARMOR_END not in self.tail
        return _Outcome(self.status, stderr, size, exceeded, unterminated, self.process.returncode)

    def _copy_plaintext(self) -> tuple[int, str | None]:
        assert self.process.stdout is not None
        size = 0
        limits = self.limits
        with self.process.stdout as plaintext:
            while chunk := plaintext.read(CHUNK_SIZE):
                size += len(chunk)
                if size > limits.max_total_bytes:
                    return size, f"plaintext exceeds {limits.max_total_bytes} bytes"
                if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(self.fed, 1):
                    return size, (
                        f"plaintext of {size} bytes from {self.fed} message bytes exceeds "
                        f"the ratio limit of {limits.max_ratio:g}:1"
                    )
                self.sink.write(chunk)
                if self.fault is not None and size == len(chunk):  # the first plaintext
                    fault_point(self.fault)
                if self.observe is not None:
                    self.observe(chunk)
        return size, None

    def _feed(self) -> None:
        assert self.process.stdin is not None
        stdin = self.process.stdin
        try:
            while chunk := self.source.read(CHUNK_SIZE):
                if len(self.head) < _ARMOR_PROBE:
                    self.head += chunk[:_ARMOR_PROBE]
                self.tail = (self.tail + chunk)[-_ARMOR_PROBE:]
                view = memoryview(chunk)
                for start in range(0, len(view), _PIPE_SLICE):
                    piece = view[start : start + _PIPE_SLICE]
                    # Counted before the write, so the ratio never blames gpg for
                    # bytes it already holds; a slice bounds the overcount.
                    self.fed += len(piece)
                    try:
                        stdin.write(piece)
                    except OSError:
                        return  # gpg stopped reading: it failed or was stopped
            self.fed_all = True
        except BaseException as exc:  # handed to the caller's thread by wait()
            self.feed_error = exc
            self.process.kill()
        finally:
            with suppress(OSError):
                stdin.close()

    def _read_status(self, fd: int) -> None:
        with open(fd, "rb") as lines:
            while line := lines.readline(_MAX_STATUS_LINE):
                if len(self.status) < _MAX_STATUS_LINES:
                    parsed = _parse_status(line.decode("utf-8", "replace"))
                    if parsed is not None:
                        logger.debug("gpg status: %s %s", parsed[0], " ".join(parsed[1]))
                        self.status.append(parsed)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        kept = 0
        with self.process.stderr as stderr:
            while chunk := stderr.read(8192):
                self.stderr.append(chunk)
                kept += len(chunk)
                while kept > _STDERR_TAIL and len(self.stderr) > 1:
                    kept -= len(self.stderr.popleft())


# ----------------------------------------------------------------- verdict


@dataclass
class _Verdict:
    reason: Reason | None
    message: str
    recipient: str | None = None
    signer: str | None = None
    literal_name: str | None = None


@dataclass
class _Status:
    records: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def has(self, *keywords: str) -> bool:
        return any(keyword in keywords for keyword, _ in self.records)

    def all(self, keyword: str) -> list[tuple[str, ...]]:
        return [args for kw, args in self.records if kw == keyword]

    def first(self, keyword: str) -> tuple[str, ...] | None:
        found = self.all(keyword)
        return found[0] if found else None


def _parse_status(line: str) -> tuple[str, tuple[str, ...]] | None:
    if not line.startswith("[GNUPG:] "):
        return None
    words = line[len("[GNUPG:] ") :].split()
    return (words[0], tuple(words[1:])) if words else None


def _policy(
    given: str | None, has_signers: bool, default: SignaturePolicy | None = None
) -> SignaturePolicy:
    """The signature policy in force, refusing an unknown one and one that cannot be met."""
    if given is None:
        return default or ("required" if has_signers else "ignore")
    if given not in _POLICIES:
        raise GpgError(f"signature: expected one of {', '.join(_POLICIES)}, got {given!r}")
    if given != "ignore" and not has_signers:
        raise GpgError(f"signature = {given!r} needs at least one signer key")
    return cast(SignaturePolicy, given)


def _judge(outcome: _Outcome, signers: frozenset[str], policy: SignaturePolicy) -> _Verdict:
    """Decide from gpg's status lines (not its exit code) whether to release the plaintext."""
    status = _Status(outcome.status)
    if outcome.exceeded is not None:
        return _Verdict(Reason.PGP_BOMB, outcome.exceeded)
    if not status.has("DECRYPTION_OKAY") and _passphrase_problem(status):
        raise GpgError("the secret key's passphrase is wrong or missing")
    signalled = _signalled(outcome.returncode, outcome.stderr)
    if signalled is not None and not _decrypted_whole(status):
        # Someone else stopped gpg (a signal to the whole cgroup, an operator's kill): that
        # says nothing about the message, so it is no verdict; the file stays in line.
        raise GpgError(f"gpg was stopped by {signalled} before it finished decrypting")
    if outcome.unterminated_armor and not _decrypted_whole(status):
        return _Verdict(Reason.PGP_TRUNCATED, "the armoured message has no END line")
    if status.has("BADMDC"):
        return _Verdict(Reason.PGP_INTEGRITY, "the message was modified: its MDC check failed")
    info = status.first("DECRYPTION_INFO")
    if info is not None and _unprotected(info):
        return _Verdict(Reason.PGP_INTEGRITY, "the message has no integrity protection (no MDC)")
    if not _decrypted_whole(status):
        return _failure(status, outcome.stderr)
    return _check_signature(status, signers, policy)


def _signalled(returncode: int | None, stderr: str) -> str | None:
    """The signal that stopped gpg (``SIGTERM``…), from its exit status or its last words."""
    if returncode is not None and returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    caught = _SIGNAL_CAUGHT.search(stderr)
    return f"a {caught[1]} signal" if caught else None


def _passphrase_problem(status: _Status) -> bool:
    if status.has("BAD_PASSPHRASE", "MISSING_PASSPHRASE", "NEED_PASSPHRASE"):
        return True
    return any(
        args[:1] == ("pkdecrypt_failed",) and _error_code(args) == _GPG_ERR_BAD_PASSPHRASE
        for args in status.all("ERROR")
    )


def _error_code(args: tuple[str, ...]) -> int | None:
    try:
        return int(args[1]) & 0xFFFF
    except (IndexError, ValueError):
        return None


def _unprotected(info: tuple[str, ...]) -> bool:
    # DECRYPTION_INFO <mdc_method> <sym_algo> [<aead_algo>]: neither MDC nor AEAD.
    mdc = info[0] if info else "0"
    aead = info[2] if len(info) > 2 else "0"
    return mdc == "0" and aead == "0"


def _decrypted_whole(status: _Status) -> bool:
    info = status.first("DECRYPTION_INFO")
    protected = status.has("GOODMDC") or (info is not None and not _unprotected(info))
    return (
        status.has("DECRYPTION_OKAY")
        and status.has("END_DECRYPTION")
        and protected
        and not status.has(*_FAILURE_KEYWORDS)
    )


def _failure(status: _Status, stderr: str) -> _Verdict:
    detail = _last_line(stderr)
    if status.has("NO_SECKEY"):
        key_ids = ", ".join(args[0] for args in status.all("NO_SECKEY") if args)
        return _Verdict(Reason.PGP_NO_KEY, f"no configured secret key for recipient(s) {key_ids}")
    if status.has("NEED_PASSPHRASE_SYM"):
        return _Verdict(Reason.PGP_NO_KEY, "the message is encrypted with a passphrase, not a key")
    if status.has("PLAINTEXT") and not status.has("BEGIN_DECRYPTION"):
        return _Verdict(Reason.PGP_NOT_ENCRYPTED, "the OpenPGP data is not encrypted")
    if any(hint in stderr.lower() for hint in _TRUNCATION_HINTS):
        return _Verdict(Reason.PGP_TRUNCATED, f"the message ends early: {detail}")
    return _Verdict(Reason.PGP_CORRUPT, f"gpg could not decrypt the message: {detail}")


def _check_signature(status: _Status, signers: frozenset[str], policy: SignaturePolicy) -> _Verdict:
    recipient = (status.first("DECRYPTION_KEY") or (None, None))[1]
    literal = status.first("PLAINTEXT")
    literal_name = literal[2] if literal is not None and len(literal) > 2 else None
    if status.has("BADSIG"):  # the content does not match its signature: tampered, always
        return _Verdict(Reason.PGP_BAD_SIGNATURE, "signature status BADSIG")
    if policy == "ignore":
        return _Verdict(None, "decrypted", recipient, None, literal_name)
    bad = [keyword for keyword in _BAD_SIGNATURE_KEYWORDS if status.has(keyword)]
    if bad:
        return _Verdict(Reason.PGP_BAD_SIGNATURE, f"signature status {bad[0]}")
    if not status.has(*_SIGNATURE_KEYWORDS):
        if policy == "if_present":
            return _Verdict(None, "decrypted", recipient, None, literal_name)
        return _Verdict(Reason.PGP_UNSIGNED, "a vendor signature is required; the message has none")
    for args in status.all("VALIDSIG"):
        primary = args[9] if len(args) > 9 else args[0]
        if status.has("GOODSIG") and (primary in signers or args[0] in signers):
            return _Verdict(None, "decrypted", recipient, primary, literal_name)
    signed_by = [args[-1] for args in status.all("ERRSIG") if args] + [
        args[9] if len(args) > 9 else args[0] for args in status.all("VALIDSIG")
    ]
    return _Verdict(
        Reason.PGP_BAD_SIGNATURE,
        f"not signed by a configured vendor key (signed by {', '.join(signed_by) or 'unknown'})",
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no diagnostic from gpg"


# ----------------------------------------------------------------- helpers


def _check_key_bytes(field_name: str, value: object) -> None:
    if not isinstance(value, bytes | bytearray) or not value:
        raise GpgError(f"{field_name}: expected OpenPGP key material as non-empty bytes")


def _gpg_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GNUPGHOME", "GPG_AGENT_INFO")}
    env.update(LC_ALL="C", LANGUAGE="C")  # status lines are stable; stderr hints need English
    return env


def _gpgconf_for(binary: str) -> str | None:
    sibling = Path(binary).with_name("gpgconf")
    return str(sibling) if sibling.exists() else shutil.which("gpgconf")


def _remove_keyring(home: Path, scratch: Path, gpgconf: str | None, env: dict[str, str]) -> None:
    if _stop_agent(home):
        gpgconf = None  # told to stop directly, on its socket: no gpgconf process needed
    if gpgconf is not None:
        try:
            subprocess.run(
                [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
                env=env,
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            logger.warning("could not stop the gpg-agent of %s", home)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)


def _stop_agent(home: Path) -> bool:
    """Tell the keyring's gpg-agent to stop, on its socket in ``home`` (the Assuan command
    ``gpgconf --kill`` sends, without starting a process for it): whether it said it
    stops, or there is no agent socket there at all. ``False`` leaves it to ``gpgconf``
    (a socket elsewhere, under ``/run/user``; an agent that does not answer as expected)."""
    path = home / _AGENT_SOCKET
    if not path.exists():
        return not _AGENT_SOCKET_DIR.exists()  # under /run/user, where gpgconf finds it
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent:
            agent.settimeout(_AGENT_TIMEOUT)
            agent.connect(str(path))
            replies = agent.makefile("rb")
            if not replies.readline(_MAX_STATUS_LINE).startswith(b"OK"):
                return False
            agent.sendall(b"KILLAGENT\n")
            return replies.readline(_MAX_STATUS_LINE).startswith(b"OK")
    except OSError:
        return False


def _import_summary(result: object) -> str:
    texts: Iterable[str] = (
        str(entry.get("text", "")).strip().replace("\n", "; ")
        for entry in getattr(result, "results", [])
        if isinstance(entry, dict)
    )
    return "; ".join(text for text in texts if text) or "nothing imported"


def _passphrase_pipe(passphrase: str, child_fds: list[int]) -> int:
    """Hand the passphrase to gpg through a pipe: never argv, never a file."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, passphrase.encode("utf-8") + b"\n")
    finally:
        os.close(write_end)
    child_fds.append(read_end)
    return read_end


def _open_source(source: BinaryIO | str | os.PathLike[str], stack: ExitStack) -> IO[bytes]:
    if isinstance(source, str | os.PathLike):
        return stack.enter_context(open(source, "rb"))
    return source


def _publish(scratch: Path, output: BinaryIO | str | os.PathLike[str]) -> None:
    """Move the verified plaintext to a path (atomically) or copy it into a stream."""
    if not isinstance(output, str | os.PathLike):
        with scratch.open("rb") as plaintext:
            shutil.copyfileobj(plaintext, output, CHUNK_SIZE)
        return
    dest = Path(output)
    try:
        os.replace(scratch, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
    try:
        shutil.copyfile(scratch, partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
