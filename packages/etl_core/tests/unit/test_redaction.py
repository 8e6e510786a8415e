"""Masking secrets by shape, by value and by memory (etl_core.redaction), as the log
formatter and the settings display apply it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from etl_core.config import URL
from etl_core.redaction import (
    MAX_REMEMBERED,
    MIN_REMEMBERED_CHARS,
    mask_query_params,
    mask_values,
    redact_text,
    remember_secret,
    secret_forms,
)
from etl_core.secrets import Secret
from etl_core.work.celery.messages import error_document


def test_a_revealed_secret_is_masked_in_a_line_a_library_logs(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_KEY", "k3y/Secret+9 x")
    value = Secret("env:SHOP_KEY").reveal()
    # an HTTP client's request line under a parameter name that says nothing, and a
    # response header echoing the key URL-encoded, as httpcore logs it
    logging.getLogger("httpx").info("HTTP Request: GET http://api.test/items?k=%s", value)
    logging.getLogger("httpcore.http11").debug(
        "return_value=[(b'Link', b'<http://api.test/items?page=2&k=k3y%2FSecret%2B9%20x>')]"
    )
    text = stream.getvalue()
    assert "k3y" not in text
    assert "http://api.test/items?k=***" in text  # host, path and name kept
    assert [line["logger"] for line in map(json.loads, text.splitlines())] == [
        "httpx",
        "httpcore.http11",
    ]


def test_a_derived_credential_remembered_is_masked_too(stream: io.StringIO) -> None:
    remember_secret("ZXRsOnBhc3MtU2VjcmV0")  # a basic pair's base64
    logging.getLogger("celery").error("task failed: Authorization: ZXRsOnBhc3MtU2VjcmV0")
    assert "ZXRsOnBhc3MtU2VjcmV0" not in stream.getvalue()


def test_a_very_short_secret_is_not_masked_everywhere(stream: io.StringIO) -> None:
    remember_secret("ab"[: MIN_REMEMBERED_CHARS - 2])
    logging.getLogger("etl").info("about a cab")
    assert json.loads(stream.getvalue())["event"] == "about a cab"


def test_a_short_secret_is_masked_as_a_word_not_inside_other_words(
    stream: io.StringIO,
) -> None:
    remember_secret("data")  # a four-letter password
    logging.getLogger("etl").info("3 datasets in landing/data/ (metadata ok), key=data")
    event = json.loads(stream.getvalue())["event"]
    assert event == "3 datasets in landing/***/ (metadata ok), key=***"
    assert error_document(ValueError("GET http://x/?k=data&p=2 for test_data.csv")) == {
        "type": "builtins:ValueError",
        "message": "GET http://x/?k=***&p=2 for test_data.csv",
    }


def test_renewed_tokens_never_push_out_a_password_revealed_once(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "pg-Pass-2026")
    Secret("env:DB_PASSWORD").reveal()  # once, at start
    for hour in range(MAX_REMEMBERED + 10):  # a worker renewing its token hourly, 11 days
        remember_secret(f"access-token-{hour:04d}", fleeting=True)
    logging.getLogger("psycopg").error("connect failed: password=pg-Pass-2026 x")
    logging.getLogger("httpx").info("echo access-token-0265, access-token-0000")
    lines = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert lines == ["connect failed: password=*** x", "echo ***, access-token-0000"]


def test_secret_named_query_parameters_are_masked_and_others_kept() -> None:
    text = "GET https://h/x?page=2&api_key=abc&X-Amz-Signature=f00d;token=t#frag and a=b"
    assert mask_query_params(text) == (
        "GET https://h/x?page=2&api_key=***&X-Amz-Signature=***;token=***#frag and a=b"
    )
    assert mask_query_params("https://h/x?appid=abc&q=1", ["appid"]) == "https://h/x?appid=***&q=1"


def test_every_form_of_a_value_is_masked() -> None:
    value = 'p@ss "w/rd"'
    forms = secret_forms(value)
    assert {"p%40ss%20%22w%2Frd%22", "p%40ss+%22w%2Frd%22", 'p@ss \\"w/rd\\"'} <= forms
    for form in forms:
        assert mask_values(f"<{form}>", [value]) == "<***>"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://etl@db:5432/etl?password=pw-Secret-q&sslmode=require",
            "postgresql://etl@db:5432/etl?password=***&sslmode=require",
        ),
        ("redis://:pw-Secret-r@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://etl:pw-Secret-a@mq:5672//", "amqp://etl:***@mq:5672//"),
        ("sqs://AKIAX:pw-Secret-s@", "sqs://AKIAX:***@"),
    ],
)
def test_a_settings_url_shows_no_password(url: str, shown: str) -> None:
    assert URL(url).redacted() == shown
    assert "pw-Secret" not in repr(URL(url))


def test_secret_headers_are_masked_as_botocore_logs_them(stream: io.StringIO) -> None:
    logging.getLogger("botocore.endpoint").debug(
        "Sending http request: <AWSPreparedRequest headers={'User-Agent': b'Boto3', "
        "'X-Amz-Security-Token': b'sess-Secret-1', 'Authorization': b'AWS4-HMAC-SHA256 "
        "Credential=AKIAX/s3, Signature=sig-Secret-2'}>"
    )
    logging.getLogger("botocore.auth").debug(
        "CanonicalRequest:\nGET\n/\nhost:127.0.0.1\nx-amz-security-token:sess-Secret-1\n\nhost"
    )
    text = stream.getvalue()
    assert "Secret" not in text
    assert "'User-Agent': b'Boto3'" in text
    assert "x-amz-security-token:***" in text


@pytest.mark.parametrize(
    "said",
    [
        "passphrase: must be one line of at most 1024 characters",
        "secret_key: self-test decryption failed: no secret key",
        "signature: expected one of required, optional, none, got 'sometimes'",
    ],
)
def test_an_error_naming_a_secret_setting_keeps_its_reason(said: str) -> None:
    assert redact_text(said) == said
    assert error_document(ValueError(f"landing/pos/a.csv.gpg:\n{said}"))["message"].endswith(said)


UNENCODED = [  # a password holding an unencoded '/', '?', '#' (and '@'): users paste these
    ("postgresql://etl:pa/ss@db/x", "postgresql://etl:***@db/x"),
    ("postgres://etl:pa?ss@db:5432/x", "postgres://etl:***@db:5432/x"),
    ("postgresql://etl:pa#ss@db/x?sslmode=require", "postgresql://etl:***@db/x?sslmode=require"),
    ("postgresql://etl:p@ss?w@db1,db2/x", "postgresql://etl:***@db1,db2/x"),
    ("postgresql+psycopg://etl:p@ss/w@db/x", "postgresql+psycopg://etl:***@db/x"),
    ("mysql://u:pa/ss@h/db", "mysql://u:***@h/db"),
    ("amqp://u:p/w@host/vh", "amqp://u:***@host/vh"),
    ("amqps://u:p?w@host:5671//", "amqps://u:***@host:5671//"),
    ("redis://:pa#ss@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://:p@a/ss@host:6379/0", "rediss://:***@host:6379/0"),
    ("sqs://AKIAX:se/cr+et@", "sqs://AKIAX:***@"),
]


@pytest.mark.parametrize(("url", "shown"), UNENCODED)
def test_a_database_or_broker_url_whose_password_holds_a_slash_question_or_hash_shows_none_of_it(
    url: str, shown: str
) -> None:
    """urllib ends the user-info at the first '/', '?' or '#': the password, or its part
    after an '@', was shown in full in `config show`, reprs and log lines."""
    from etl_core.config import redacted_dict
    from etl_core.runtime import RuntimeSettings
    from etl_core.work.celery.database_id import _shown

    assert URL(url).redacted() == shown
    assert repr(URL(url)) == f"URL({shown!r})"
    assert redact_text(f"broker {url} did not answer") == f"broker {shown} did not answer"
    assert _shown(url) == shown
    displayed = redacted_dict(RuntimeSettings(broker_url=URL(url), database_url=URL(url)))
    assert displayed["broker_url"] == displayed["database_url"] == shown


@pytest.mark.parametrize(
    "url",
    [
        "https://host:8080/a@b",
        "https://api.example.com/users/me@example.com?page=2",
        "s3://bucket/landing/a@b.csv",
        "postgresql://etl@db:5432/x",
        "postgresql://etl@%2Frun%2Fpostgresql/x",
        "postgresql://etl@[::1]:5432/x",
        "redis://cache:6379/0",
    ],
)
def test_a_url_with_no_password_is_shown_as_it_is_even_with_an_at_in_its_path(url: str) -> None:
    from etl_core.work.celery.database_id import _shown

    assert URL(url).redacted() == url
    assert redact_text(f"GET {url} 200") == f"GET {url} 200"
    assert _shown(url) == url


def test_an_https_urls_password_is_masked_and_the_at_in_its_path_kept() -> None:
    url = "https://u:pw-Secret-h@host:8080/a@b?x=1"

    assert URL(url).redacted() == "https://u:***@host:8080/a@b?x=1"
    assert redact_text(url) == "https://u:***@host:8080/a@b?x=1"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://etl:Kx7/Qz9@pgw:9091", "https://etl:***@pgw:9091"),
        ("http://etl:Kx7?Qz9@pgw:9091/", "http://etl:***@pgw:9091/"),
        ("https://AKIAX:Kx7/Qz9+a@minio:9000", "https://AKIAX:***@minio:9000"),
    ],
)
def test_an_http_urls_password_holding_a_slash_or_question_is_shown_as_none_of_it(
    url: str, shown: str
) -> None:
    """urllib reads 'etl:Kx7' as a host and port there: `config show` printed the whole
    pushgateway or endpoint URL, password and all, and so did a log line quoting it."""
    assert URL(url).redacted() == shown
    assert redact_text(f"pushgateway PUT {url}/metrics failed") == (
        f"pushgateway PUT {shown}/metrics failed"
    )


def test_a_pushgateway_url_whose_password_holds_a_slash_is_refused_unquoted() -> None:
    """urllib read 'Kx7' as the port: each push failed quoting it (nonnumeric port)."""
    from etl_core.config import PushgatewayURL

    with pytest.raises(ValueError, match="percent-encode") as caught:
        PushgatewayURL("https://etl:Kx7/Qz9@pgw:9091")

    assert "Kx7" not in str(caught.value)
    assert "Qz9" not in str(caught.value)
    assert PushgatewayURL("https://etl:Kx7%2FQz9@pgw:9091").redacted() == "https://etl:***@pgw:9091"


@pytest.mark.parametrize(
    ("url", "shown"),
    [  # Azure Database for PostgreSQL's user@server, a Redis ACL user@tenant: unencoded '@'
        (
            "postgresql://etl@srv:Pw9x@srv.postgres.database.azure.com/db",
            "postgresql://etl@srv:***@srv.postgres.database.azure.com/db",
        ),
        ("redis://etl@tenant:Pw9x@cache:6379/0", "redis://etl@tenant:***@cache:6379/0"),
        ("https://etl@corp:Pw9x@pgw:9091", "https://etl@corp:***@pgw:9091"),
    ],
)
def test_a_log_line_quoting_a_url_whose_user_holds_an_at_masks_its_password(
    url: str, shown: str
) -> None:
    """`config show` masked it (the user-info read to its last '@'), but a log line or an
    error quoting the URL showed the password: the pattern took no '@' in the user."""
    assert URL(url).redacted() == shown
    assert redact_text(f"connection to {url} failed") == f"connection to {shown} failed"
