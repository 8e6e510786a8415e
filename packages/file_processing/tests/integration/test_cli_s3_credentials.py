"""``etl-file-processing scan`` on an S3 store at ``--log-level DEBUG``: botocore logs each
signed request (its headers, its canonical request); the AWS session token and the
secret key reach none of the lines, the header names do."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from etl_core.testing.scripts import run_script

CONTRACT = """
dataset = "orders"
source = "orders"
pattern = "orders_{date:%Y%m%d}.csv"
format = "csv"
columns = [{ name = "id", type = "int" }]
"""

pytestmark = pytest.mark.s3


def test_aws_credentials_never_reach_debug_logs(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "orders.toml").write_text(CONTRACT)
    token, secret_key = "awsSESSION-tok-7c1d9e", "awsSECRET-key-4b2f80"

    result = run_script(
        "etl-file-processing",
        "--log-level",
        "DEBUG",
        "--storage",
        f"s3://{s3_bucket}/{uuid.uuid4().hex[:8]}",
        "--config-dir",
        str(tmp_path),
        "--create",
        "scan",
        cwd=tmp_path,
        env={
            "ETL_S3_ENDPOINT_URL": s3_endpoint,
            "ETL_WORK_DIR": str(tmp_path),
            "AWS_ACCESS_KEY_ID": "AKIATESTONLY",
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_SESSION_TOKEN": token,
        },
    )

    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "'X-Amz-Security-Token': b'***'" in said  # botocore's request line, masked
    assert token not in said
    assert secret_key not in said
