"""The shared Celery configuration and result documents: no broker needed, no Celery imported."""

from __future__ import annotations

import json
import pickle
import sys
from datetime import timedelta

import pytest

from etl_core.config import URL, ResultBackendURL
from etl_core.errors import ConfigError, LeaseBusyError, MissingDependencyError, StorageError
from etl_core.runtime import RuntimeSettings
from etl_core.secrets import Secret
from etl_core.work import UnitResult, WorkUnit
from etl_core.work.celery import (
    RemoteUnitError,
    celery_app,
    celery_config,
    lane_queues,
    result_document,
    task_name,
    unit_result,
)
from etl_core.work.celery.config import REDIS_CONNECT_TIMEOUT, REDIS_READ_TIMEOUT

UNIT = WorkUnit("file_processing", "landing_object", "landing/pos/a.csv")


def settings(**values: object) -> RuntimeSettings:
    given = {"broker_url": URL("redis://127.0.0.1:6379/0"), **values}
    return RuntimeSettings(**given)  # type: ignore[arg-type]


def test_the_configuration_acks_late_takes_one_unit_at_a_time_and_speaks_json_only() -> None:
    config = celery_config(settings(), "file_processing")
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_serializer"] == config["result_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["result_backend"] == "redis://127.0.0.1:6379/0"  # the broker's Redis
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility == config["task_time_limit"] + 600


def test_a_redis_broker_and_result_backend_get_connect_and_read_timeouts() -> None:
    config = celery_config(settings(), "file_processing")
    transport = config["broker_transport_options"]
    assert transport["socket_connect_timeout"] == REDIS_CONNECT_TIMEOUT
    assert transport["socket_timeout"] == REDIS_READ_TIMEOUT
    assert transport["socket_keepalive"] is True
    assert transport["visibility_timeout"] > 0  # merged, not replaced
    assert config["redis_socket_connect_timeout"] == REDIS_CONNECT_TIMEOUT
    assert config["redis_socket_timeout"] == REDIS_READ_TIMEOUT


def test_a_rabbitmq_broker_gets_no_redis_socket_options() -> None:
    config = celery_config(
        settings(broker_url=URL("amqp://guest:guest@rabbit:5672//")), "file_processing"
    )
    assert "socket_timeout" not in config["broker_transport_options"]
    assert "redis_socket_timeout" not in config  # rpc://
    backend = settings(
        broker_url=URL("amqp://guest:guest@rabbit:5672//"),
        result_backend=URL("redis://cache:6379/1"),
    )
    assert celery_config(backend, "file_processing")["redis_socket_timeout"] == REDIS_READ_TIMEOUT


def test_each_lane_task_goes_to_its_own_prefixed_queue() -> None:
    config = celery_config(settings(queue_prefix="staging."), "file_processing")
    assert config["task_default_queue"] == "staging.file_processing"
    routes = config["task_routes"]
    assert routes[task_name("data_pipeline")] == {"queue": "staging.data_pipeline"}
    assert routes["observability.run_unit"] == {"queue": "staging.observability"}
    assert lane_queues(settings(), "observability").dead == "observability.dead"


@pytest.mark.parametrize("prefix", ["staging ", " staging.", "stag ing.", "staging.\n", "st*ging."])
def test_a_queue_prefix_a_producer_and_its_workers_might_spell_apart_is_refused(
    prefix: str,
) -> None:
    with pytest.raises(ConfigError, match=r"queue_prefix: .*letters, digits") as caught:
        celery_config(settings(queue_prefix=prefix), "file_processing")
    assert caught.value.fields == ("queue_prefix",)
    assert repr(prefix) in str(caught.value)  # the stray space shown, quoted


@pytest.mark.parametrize("prefix", ["", "staging.", "t0a1b2c3d4e5.", "prod-eu_1:"])
def test_a_queue_prefix_of_plain_characters_is_taken(prefix: str) -> None:
    queues = celery_config(settings(queue_prefix=prefix), "file_processing")["task_default_queue"]
    assert queues == f"{prefix}file_processing"


def test_rabbitmq_results_come_back_over_rpc_and_sqs_needs_a_backend() -> None:
    amqp = settings(broker_url=URL("amqp://guest:guest@127.0.0.1:5672//"))
    assert celery_config(amqp, "file_processing")["result_backend"] == "rpc://"
    with pytest.raises(ConfigError) as caught:
        celery_config(settings(broker_url=URL("sqs://sqs.eu-west-1.example/")), "file_processing")
    assert caught.value.fields == ("result_backend",)


def test_no_broker_is_a_configuration_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="ETL_BROKER_URL") as caught:
        celery_config(RuntimeSettings(), "file_processing")
    assert caught.value.fields == ("broker_url",)


def test_a_broker_scheme_the_platform_does_not_configure_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        celery_config(settings(broker_url=URL("kafka://host")), "file_processing")
    assert caught.value.fields == ("broker_url",)
    assert "'kafka'" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "amqps://guest:guest@rabbit:5671//?ssl_cert_reqs=required",
        "amqps://rabbit//?ssl_ca_certs=/etc/ca.pem&heartbeat=30",
        "amqp://guest:guest@rabbit:5672//?ssl_cert_reqs=none",
    ],
)
def test_tls_options_in_a_rabbitmq_url_are_a_configuration_error_naming_broker_url(
    url: str,
) -> None:
    # the broker library passed them to the TLS socket, whose TypeError was said as a
    # broker that did not answer (exit 1)
    with pytest.raises(ConfigError) as info:
        celery_config(settings(broker_url=URL(url)), "file_processing")
    assert info.value.fields == ("broker_url",)
    said = str(info.value)
    assert "takes no TLS options in the URL (got ssl_" in said
    assert "use amqps://… without them" in said


@pytest.mark.parametrize(
    ("broker", "backend", "expected"),
    [
        ("Redis://cache:6379/0", None, ("redis://cache:6379/0", "redis://cache:6379/0")),
        ("AMQP://guest:guest@rabbit//", "RPC://", ("amqp://guest:guest@rabbit//", "rpc://")),
        ("amqp://rabbit//", "REDIS://Cache:6379/1", ("amqp://rabbit//", "redis://Cache:6379/1")),
    ],
)
def test_a_url_scheme_in_capitals_reaches_celery_in_lower_case(
    broker: str, backend: str | None, expected: tuple[str, str]
) -> None:
    # Celery looked `RPC://` (taken by the settings) up as a module: "No module named 'RPC'"
    values: dict[str, object] = {"broker_url": URL(broker)}
    if backend is not None:
        values["result_backend"] = ResultBackendURL(backend)
    config = celery_config(settings(**values), "file_processing")
    assert (config["broker_url"], config["result_backend"]) == expected


def test_a_rabbitmq_url_with_other_options_is_taken() -> None:
    url = "amqps://guest:guest@rabbit:5671//?heartbeat=30"
    assert celery_config(settings(broker_url=URL(url)), "file_processing")["broker_url"] == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis://:secret@host:6379/abc", "'/abc'"),  # was: "did not answer", waited for
        ("rediss://host:6380/0?db=3", "?db="),  # was: a TypeError out of the broker library
    ],
)
def test_a_redis_database_not_written_as_a_number_after_the_port_is_refused(
    url: str, said: str
) -> None:
    with pytest.raises(ConfigError, match=r"broker_url: .*database") as caught:
        celery_config(settings(broker_url=URL(url)), "file_processing")
    assert caught.value.fields == ("broker_url",)
    assert said in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("backend", "said"),
    [
        ("redis://:secret@host:6379/abc", "'/abc'"),
        ("rediss://host:6380/0?db=3", "?db="),
    ],
)
def test_a_result_backend_database_not_written_as_a_number_is_refused(
    backend: str, said: str
) -> None:
    with pytest.raises(ConfigError, match=r"result_backend: .*database") as caught:
        celery_config(
            settings(broker_url=URL("redis://host:6379/0"), result_backend=URL(backend)),
            "file_processing",
        )
    assert caught.value.fields == ("result_backend",)
    assert said in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("broker", "backend", "field", "said"),
    [
        ("redis://host:6379/0", "rediss://:secret@host:6380/1", "result_backend", "none"),
        ("redis://host:6379/0", "rediss://host:6380/1?ssl_cert_reqs=maybe", "result_backend",
         "'maybe'"),
        ("redis://host:6379/0", "redis://host:6379/1?ssl_cert_reqs=none", "result_backend",
         "rediss://"),
        ("rediss://:secret@host:6380/0", None, "broker_url", "result_backend is not set"),
    ],
)  # fmt: skip
def test_a_redis_result_backend_whose_tls_celery_refuses_is_refused_at_start(
    broker: str, backend: str | None, field: str, said: str
) -> None:
    # Celery's Redis result backend refuses these with a ValueError at the first result,
    # on every worker and caller (the broker library takes a bare rediss:// URL)
    given = settings(
        broker_url=URL(broker), result_backend=URL(backend) if backend is not None else None
    )
    with pytest.raises(ConfigError, match=rf"{field}: .*ssl") as caught:
        celery_config(given, "file_processing")
    assert caught.value.fields == (field,)
    assert said in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("broker", "backend"),
    [
        ("rediss://:pw@host:6380/2?ssl_cert_reqs=required", None),
        ("rediss://host:6380/2", "rediss://host:6380/3?ssl_cert_reqs=none"),
        ("rediss://host:6380/2", "redis://host:6379/3"),
        ("amqps://guest:guest@host:5671//", None),
    ],
)
def test_a_result_backend_celery_can_open_is_taken(broker: str, backend: str | None) -> None:
    given = settings(
        broker_url=URL(broker), result_backend=URL(backend) if backend is not None else None
    )
    app = celery_app(given, "file_processing")
    assert app.backend is not None  # Celery's own check of the URL, as a worker's first result


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379",
        "redis://host:6379/",
        "redis://host:6379/15",
        "rediss://:pw@host:6380/2?ssl_cert_reqs=required",
        "amqp://guest:guest@host:5672/vhost",  # RabbitMQ's path is its virtual host
    ],
)
def test_a_broker_url_with_or_without_a_database_number_is_taken(url: str) -> None:
    assert celery_config(settings(broker_url=URL(url)), "file_processing")["broker_url"] == url


def test_limits_out_of_order_are_all_reported_at_once() -> None:
    bad = settings(
        task_soft_time_limit=timedelta(minutes=10),
        task_time_limit=timedelta(minutes=5),
        broker_visibility_timeout=timedelta(minutes=1),
        task_attempts=0,
    )
    with pytest.raises(ConfigError) as caught:
        celery_config(bad, "file_processing")
    assert caught.value.fields == ("task_time_limit", "broker_visibility_timeout", "task_attempts")


def test_time_limits_closer_than_the_cleanup_gap_are_refused() -> None:
    # 2 s apart, the hard kill landed while a unit cleaned up after the soft limit
    close = settings(
        task_soft_time_limit=timedelta(seconds=60), task_time_limit=timedelta(seconds=62)
    )
    with pytest.raises(ConfigError, match=r"task_time_limit: must be at least 5s above") as caught:
        celery_config(close, "file_processing")
    assert caught.value.fields == ("task_time_limit",)
    far = settings(
        task_soft_time_limit=timedelta(seconds=60), task_time_limit=timedelta(seconds=65)
    )
    assert celery_config(far, "file_processing")["task_time_limit"] == 65


def test_a_platform_error_comes_back_from_a_worker_as_itself_with_its_fields() -> None:
    error = StorageError("store down", key="landing/pos/a.csv", url="s3://b")
    failed: UnitResult[int] = UnitResult(UNIT, "failed", error=error, attempts=3, seconds=1.5)
    back = unit_result(result_document(failed, encode=str), UNIT, decode=int)
    assert (back.status, back.attempts, back.seconds) == ("failed", 3, 1.5)
    assert isinstance(back.error, StorageError)
    assert (back.error.key, back.error.url, str(back.error)) == (
        "landing/pos/a.csv",
        "s3://b",
        "store down",
    )


def test_an_error_that_cannot_travel_comes_back_named() -> None:
    class OddError(LeaseBusyError):
        pass

    unjson = OddError("busy", key="k", holder=object())  # type: ignore[arg-type]
    for error in (ValueError("odd row"), unjson):
        failed: UnitResult[int] = UnitResult(UNIT, "failed", error=error, attempts=1)
        back = unit_result(result_document(failed, encode=str), UNIT, decode=int)
        assert isinstance(back.error, RemoteUnitError)
        assert type(error).__name__ in str(back.error)
        assert pickle.loads(pickle.dumps(back.error)).error_type == back.error.error_type


def test_a_value_travels_through_the_lane_codec() -> None:
    done: UnitResult[int] = UnitResult(UNIT, "succeeded", value=42, attempts=1)
    document = result_document(done, encode=lambda v: {"n": v})
    assert document["value"] == {"n": 42}
    assert unit_result(document, UNIT, decode=lambda d: d["n"]).value == 42


def test_a_result_that_is_no_document_is_refused() -> None:
    with pytest.raises(ValueError, match="field 'result'"):
        unit_result({"status": "maybe"}, UNIT, decode=int)


def test_without_celery_installed_building_an_app_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)  # what a missing package looks like
    with pytest.raises(MissingDependencyError, match=r"etl-core\[celery\]"):
        celery_app(settings(), "file_processing")


def test_a_failed_units_error_rests_in_the_result_backend_without_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The document goes to the result backend and to a dead-letter queue: a secret the
    unit revealed, or a URL password, is masked in its message, arguments and fields."""
    monkeypatch.setenv("UNIT_TEST_KEY", "unit-Secret-8b41c2")
    key = Secret("env:UNIT_TEST_KEY").reveal()
    store_error = StorageError(
        f"GET https://api.test/x?k={key} failed", key="landing/a.csv", url="redis://:pw-Secret@h/0"
    )
    busy = LeaseBusyError(f"busy ({key})", key="k", token=7)
    for error in (store_error, busy, RuntimeError(f"unexpected: {key}")):
        failed: UnitResult[int] = UnitResult(UNIT, "failed", error=error, attempts=1)
        document = result_document(failed, encode=str)
        assert "Secret" not in json.dumps(document)
        back = unit_result(document, UNIT, decode=int)
        assert "***" in str(back.error)
    assert isinstance(back.error, RemoteUnitError)
    rebuilt = unit_result(
        result_document(UnitResult(UNIT, "failed", error=busy), encode=str), UNIT, decode=int
    ).error
    assert isinstance(rebuilt, LeaseBusyError)
    assert rebuilt.token == 7  # a field named like a secret keeps its value and type


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("broker_url", "redis://:Kx7/Qz9@cache:6379/0"),
        ("broker_url", "redis://:Kx7?Qz9@cache:6379/0"),
        ("broker_url", "amqp://etl:Kx7#Qz9@rabbit:5672//"),
        ("broker_url", "sqs://AKIAX:Kx7/Qz9@"),
        ("result_backend", "redis://:Kx7/Qz9@cache:6379/1"),
    ],
)
def test_a_broker_password_holding_an_unencoded_slash_question_or_hash_is_refused_unquoted(
    field: str, url: str
) -> None:
    """The Redis database check quoted the password's rest ('/Qz9@cache:6379/0'), kombu's
    ValueError its start ("Port could not be cast to integer value as 'Kx7'")."""
    said = refused_as(field, url)
    assert "percent-encode" in said
    assert "Kx7" not in said
    assert "Qz9" not in said


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("broker_url", "redis://cache:6379/0?client_name=etl@prod"),
        ("broker_url", "redis://:pw@cache:6379/0?client_name=etl@prod"),
        ("result_backend", "rediss://cache:6380/1?ssl_cert_reqs=required&ssl_ca_certs=/ca@x.pem"),
    ],
)
def test_an_at_in_a_broker_urls_query_value_is_refused_saying_to_write_it_as_percent_40(
    field: str, url: str
) -> None:
    """The user-info of a broker URL ends at its last '@', so an '@' in a query value makes
    the rest of the URL read as a password: refused (it worked before), the message named
    only a password holding '/', '?' or '#', which a URL without one does not have."""
    said = refused_as(field, url)
    assert "an '@' in a query value" in said
    assert "%40" in said


def test_a_failover_list_of_brokers_is_taken_and_each_ones_password_checked() -> None:
    """Celery's ';'-separated broker list (RabbitMQ nodes tried in turn): read to the
    list's last '@', the first URL's host read as a password holding '/'."""
    failover = "amqp://etl:pw1@rabbit1:5672//;amqp://etl:pw2@rabbit2:5672//"
    config = celery_config(settings(broker_url=URL(failover)), "file_processing")

    assert config["broker_url"] == failover
    bad = "amqp://etl:pw1@rabbit1:5672//;amqp://etl:p/w2@rabbit2:5672//"
    with pytest.raises(ConfigError) as caught:
        celery_config(settings(broker_url=URL(bad)), "file_processing")
    assert caught.value.fields == ("broker_url",)
    assert "p/w2" not in str(caught.value)


def refused_as(field: str, url: str) -> str:
    """The message refusing ``url`` given as ``field`` (``broker_url`` or
    ``result_backend``), which it names alone."""
    backend = ResultBackendURL(url) if field == "result_backend" else None
    broker = URL(url) if field == "broker_url" else URL("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError) as caught:
        celery_config(settings(broker_url=broker, result_backend=backend), "file_processing")
    assert caught.value.fields == (field,)
    return str(caught.value)
