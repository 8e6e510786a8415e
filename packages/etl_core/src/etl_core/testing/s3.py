"""A real S3 endpoint for tests: moto's server on 127.0.0.1, reached over HTTP with boto3.

Typical use, from a session-scoped pytest fixture::

    with s3_server() as endpoint_url:
        bucket = create_bucket(endpoint_url)
        store = open_store(f"s3://{bucket}/data", endpoint_url=endpoint_url)

moto and boto3 are imported only when called (the dev group installs
``moto[server]``). Dummy credentials are set for the server's lifetime and the
previous environment is restored afterwards.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from etl_core.errors import MissingDependencyError

__all__ = ["TEST_REGION", "aws_test_environment", "create_bucket", "s3_server"]

TEST_REGION = "us-east-1"

# Variables that could send a test to a real account or endpoint; unset while testing.
_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_SECURITY_TOKEN",
)


@contextmanager
def aws_test_environment(region: str = TEST_REGION) -> Iterator[None]:
    """Set dummy AWS credentials and region (and hide real config) until the block ends.

    The environment is restored exactly afterwards, even on error. It is
    process-wide while active, so use it around a whole test session, not
    inside concurrently running tests.
    """
    dummy = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {name: os.environ.get(name) for name in (*dummy, *_UNSET)}
    try:
        for name in _UNSET:
            os.environ.pop(name, None)
        os.environ.update(dummy)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def s3_server(*, region: str = TEST_REGION, start_timeout: float = 30.0) -> Iterator[str]:
    """Run moto's S3 server on 127.0.0.1 (a free port) and yield its endpoint URL.

    Raises:
        MissingDependencyError: moto's server extra is not installed.
        RuntimeError: the server did not start within ``start_timeout`` seconds.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise MissingDependencyError(
            "the moto S3 test server", package="moto", extra="server"
        ) from exc
    with aws_test_environment(region), _quiet_request_log(), _atomic_conditional_writes():
        # Port 0 lets the OS pick a free port atomically; the server reports which.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        _start(server, start_timeout)
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def create_bucket(endpoint_url: str, *, prefix: str = "etl-test", region: str = TEST_REGION) -> str:
    """Create a uniquely named bucket on ``endpoint_url`` and return its name."""
    try:
        import boto3
    except ImportError as exc:
        raise MissingDependencyError("S3 test buckets", package="etl-core", extra="s3") from exc
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    try:
        if region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
    finally:
        client.close()
    return name


_WRITES = threading.Lock()
_WRITE_HANDLERS = ("put_object", "copy_object")
_serialized_servers = 0


@contextmanager
def _atomic_conditional_writes() -> Iterator[None]:
    """Make moto's object writes one at a time while a server runs.

    S3 checks ``If-Match`` / ``If-None-Match`` and writes atomically; moto checks, then
    writes, so two threads of its server can both pass the check and a race test would
    measure moto's race instead of the store's compare-and-put.
    """
    global _serialized_servers
    from moto.s3.responses import S3Response

    if _serialized_servers == 0:
        for name in _WRITE_HANDLERS:
            setattr(S3Response, name, _one_at_a_time(getattr(S3Response, name)))
    _serialized_servers += 1
    try:
        yield
    finally:
        _serialized_servers -= 1
        if _serialized_servers == 0:
            for name in _WRITE_HANDLERS:
                setattr(S3Response, name, getattr(S3Response, name).__wrapped__)


def _one_at_a_time(handler: Any) -> Any:
    @functools.wraps(handler)
    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return handler(self, *args, **kwargs)

    return serialized


@contextmanager
def _quiet_request_log() -> Iterator[None]:
    """Keep werkzeug from printing one line per request while the server runs."""
    werkzeug = logging.getLogger("werkzeug")
    previous = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    try:
        yield
    finally:
        werkzeug.setLevel(previous)


def _start(server: Any, timeout: float) -> None:
    """Start the server, bounded: moto's ``start()`` waits forever if its thread dies."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.start()
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    starter = threading.Thread(target=run, name="moto-server-start", daemon=True)
    starter.start()
    starter.join(timeout)
    if failure:
        raise RuntimeError(f"moto S3 server failed to start: {failure[0]}") from failure[0]
    if starter.is_alive():
        raise RuntimeError(f"moto S3 server did not start within {timeout} s")
