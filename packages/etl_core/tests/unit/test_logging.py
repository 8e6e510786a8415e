"""Behaviour of etl_core.logging: JSON lines, context binding, redaction, third-party loggers."""

from __future__ import annotations

import io
import json
import logging

import pytest

from etl_core.logging import (
    bind_context,
    bind_process_context,
    bound_context,
    clear_context,
    configure_logging,
    get_context,
    redact,
    unbind_context,
)
from etl_core.testing.logs import capture_logs
from etl_core.threads import ContextThreadPoolExecutor, start_thread


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_standard_fields(stream: io.StringIO) -> None:
    logging.getLogger("etl.test").info("loaded %d rows", 12, extra={"table": "sales"})
    [record] = lines(stream)
    assert record["level"] == "info"
    assert record["logger"] == "etl.test"
    assert record["event"] == "loaded 12 rows"
    assert record["table"] == "sales"
    assert str(record["ts"]).endswith("+00:00")


def test_bound_context_is_carried_on_every_record(stream: io.StringIO) -> None:
    bind_context(run_id="r-1")
    with bound_context(dataset="pos", key="landing/pos/a.csv"):
        logging.getLogger("etl").info("inside")
    logging.getLogger("etl").info("outside")
    inside, outside = lines(stream)
    assert (inside["run_id"], inside["dataset"], inside["key"]) == (
        "r-1",
        "pos",
        "landing/pos/a.csv",
    )
    assert outside["run_id"] == "r-1"
    assert "dataset" not in outside


def test_unbind_and_clear_remove_keys() -> None:
    clear_context()
    bind_context(a=1, b=2)
    unbind_context("a")
    assert get_context() == {"b": 2}
    clear_context()
    assert get_context() == {}


def test_context_follows_work_into_library_threads(stream: io.StringIO) -> None:
    log = logging.getLogger("etl.threads")
    with bound_context(run_id="r-42"):
        with ContextThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda n: log.info("task %d", n), range(3)))
        start_thread(log.info, "thread").join(timeout=5)
    records = lines(stream)
    assert len(records) == 4
    assert all(r["run_id"] == "r-42" for r in records)


def test_secret_looking_fields_are_redacted(stream: io.StringIO) -> None:
    logging.getLogger("etl").info(
        "connect", extra={"password": "hunter2", "api_key": "abc", "aws_secret_access_key": "x"}
    )
    [record] = lines(stream)
    assert record["password"] == record["api_key"] == record["aws_secret_access_key"] == "***"
    assert "hunter2" not in stream.getvalue()


def test_passwords_in_urls_and_bearer_tokens_are_redacted_from_messages(
    stream: io.StringIO,
) -> None:
    logging.getLogger("etl").warning(
        "cannot reach postgresql://etl:s3cr3t@db:5432/etl with Bearer abcdefghijklmnop"
    )
    text = stream.getvalue()
    assert "s3cr3t" not in text
    assert "abcdefghijklmnop" not in text
    assert "postgresql://etl:***@db:5432/etl" in text


def test_exceptions_are_logged_with_type_and_traceback(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad row")
    except ValueError:
        logging.getLogger("etl").exception("failed")
    [record] = lines(stream)
    assert record["exc_type"] == "ValueError"
    assert "bad row" in str(record["exception"])


def test_third_party_loggers_flow_through_the_same_handler(stream: io.StringIO) -> None:
    configure_logging(fmt="json", stream=stream, level="INFO")
    logging.getLogger("django.db.backends").error("db down")
    logging.getLogger("botocore.credentials").info("chatty")  # quietened to WARNING
    records = lines(stream)
    assert [r["logger"] for r in records] == ["django.db.backends"]


def test_uvicorn_s_coloured_copy_of_the_message_is_no_field(stream: io.StringIO) -> None:
    """uvicorn adds ``color_message`` (the event with ANSI escapes) to its records; ``serve``
    printed it in every JSON line, escape codes and all."""
    configure_logging(fmt="json", stream=stream, level="INFO")
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "Started \x1b[36m%d\x1b[0m"}
    )
    [record] = lines(stream)
    assert record["event"] == "Started server process [7]"
    assert "color_message" not in record
    written = stream.getvalue()
    assert "\x1b" not in written
    assert "\\u001b" not in written


def test_an_unknown_log_level_s_refusal_lists_critical_too(stream: io.StringIO) -> None:
    """The refusal (and ``--log-level``'s help) said DEBUG to ERROR; CRITICAL is a level too."""
    configure_logging(level="CRITICAL", stream=stream)
    assert logging.getLogger().level == logging.CRITICAL
    with pytest.raises(ValueError, match="ERROR or CRITICAL"):
        configure_logging(level="LOUD", stream=stream)


def test_configuring_twice_replaces_the_handler(stream: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging(fmt="json", stream=second)
    logging.getLogger("etl").info("once")
    assert stream.getvalue() == ""
    assert len(lines(second)) == 1


def test_console_format_is_human_readable() -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    buffer = io.StringIO()
    try:
        configure_logging(fmt="console", stream=buffer)
        with bound_context(dataset="pos"):
            logging.getLogger("etl").info("hello world")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = buffer.getvalue()
    assert "hello world" in line
    assert "dataset=pos" in line
    assert not line.startswith("{")


def test_unknown_level_is_refused_with_the_value_named() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging(level="LOUD", stream=io.StringIO())


def test_redact_walks_nested_structures() -> None:
    data = {"db": {"url": "postgres://u:p@h/d", "token": "t"}, "keys": ["a"]}
    assert redact(data) == {"db": {"url": "postgres://u:***@h/d", "token": "***"}, "keys": ["a"]}


def test_capture_logs_collects_structured_records() -> None:
    with capture_logs() as records, bound_context(run_id="r-9"):
        logging.getLogger("etl.capture").debug("quiet detail", extra={"rows": 3})
    assert records == [
        {**records[0], "event": "quiet detail", "level": "debug", "run_id": "r-9", "rows": 3}
    ]


def test_private_key_blocks_are_redacted_from_messages(stream: io.StringIO) -> None:
    armoured = b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlFgEawda4BYJKwYBBAHaRw8BAQdA\n=abcd\n"
    logging.getLogger("etl").warning("import_keys: %r", armoured)
    logging.getLogger("etl").warning(
        "key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY----- end"
    )
    text = stream.getvalue()
    assert "lFgEawda4BYJ" not in text
    assert "MIIEvQIBADAN" not in text
    assert "-----BEGIN PGP PRIVATE KEY BLOCK----- ***" in text
    assert "key -----BEGIN PRIVATE KEY----- *** end" in text


def test_gnupg_logger_stays_at_warning_even_at_debug(stream: io.StringIO) -> None:
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("gnupg").getEffectiveLevel() == logging.WARNING


def test_process_context_reaches_a_thread_that_did_not_inherit_the_context(
    stream: io.StringIO,
) -> None:
    import threading

    bind_process_context(lane="file_processing", run_id="run-7")
    bind_context(key="landing/a.csv")
    thread = threading.Thread(target=lambda: logging.getLogger("library").warning("from a pool"))
    thread.start()
    thread.join(timeout=10)
    logging.getLogger("ours").info("here")

    from_library, ours = lines(stream)
    assert (from_library["lane"], from_library["run_id"]) == ("file_processing", "run-7")
    assert "key" not in from_library  # bound to this thread's context only
    assert (ours["run_id"], ours["key"]) == ("run-7", "landing/a.csv")


def test_bound_context_wins_over_the_process_context(stream: io.StringIO) -> None:
    bind_process_context(run_id="process-run")
    with bound_context(run_id="unit-run"):
        logging.getLogger("ours").info("inside")
    (record,) = lines(stream)
    assert record["run_id"] == "unit-run"
