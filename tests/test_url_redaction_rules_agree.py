"""etl_core's redaction and the schema package's ``redact_url`` hold two copies of one
rule (the schema package imports no etl_core): where a database or broker URL's
user-info ends, what of it is masked, and whether its password holds an unencoded
``/``, ``?`` or ``#``. Fed the same URLs, both must say the same, or a URL shown in
``config show`` reads otherwise in the schema's own errors (``etl-schema``, the door)."""

from __future__ import annotations

import pytest

from etl_core.config import URL
from etl_core.redaction import unencoded_password
from etl_database_schema.database_url import _unencoded_password, redact_url

URLS = [
    "postgresql://etl:pw@db:5432/etl",
    "postgresql://etl@db/etl",
    "postgresql://etl:pa/ss@db/x",
    "postgresql://etl:pa?ss@db/x",
    "postgresql://etl:pa#ss@db/x?sslmode=require",
    "postgresql://etl:p@ss@db1:5432,db2:5432/x",
    "postgresql://etl:pw@db/etl?application_name=a@b",
    "postgresql://etl@db/etl?application_name=a:b@c",
    "postgresql://etl:pw@db/etl?password=a@b",
    "postgresql://db/etl?password=pw",
    "POSTGRES://etl:pa/ss@db/x",
    "postgresql+psycopg://etl:pa/ss@db/x",
    "postgresql://etl@%2Frun%2Fpostgresql/x",
    "sqlite:///etl.sqlite3",
    "sqlite:////abs/path@x.sqlite3",
    "sqlite:////data/pa:th@x.sqlite3",
    "sqlite:///rel/pa:th@x.db",
    "redis://:pw@cache:6379/0",
    "redis://:pa/ss@cache:6379/0",
    "redis://cache:6379/0?client_name=etl@prod",
    "rediss://:pw@cache:6380/0?ssl_cert_reqs=required",
    "amqp://guest:guest@rabbit:5672//",
    "amqps://u:p?w@rabbit:5671//",
    "sqs://AKIAX:se/cr+et@",
    "https://u:pw@host:8080/a@b",
    "https://host:8080/a@b",
    "https://etl:pa/ss@pgw:9091",
    "http://etl:pa?ss@pgw:9091/",
    "https://[::1]:9091/a@b",
    "postgresql://etl@srv:pw@srv.postgres.database.azure.com/db",
    "redis://etl@tenant:pw@cache:6379/0",
    "s3://bucket/a:b@c",
]


@pytest.mark.parametrize("url", URLS)
def test_etl_core_and_the_schema_package_mask_and_refuse_the_same_urls_alike(url: str) -> None:
    assert redact_url(url) == URL(url).redacted()
    assert _unencoded_password(url) == unencoded_password(url)
