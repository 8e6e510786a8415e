"""Database URLs → Django DATABASES entries (pure parsing, no Django set-up)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_database_schema import (
    DatabaseUrlError,
    parse_database_url,
    redact_message,
    redact_url,
    resolve_database_url,
    sqlite_url,
)

POSTGRESQL_DEFAULTS = {  # what the door connects with unless the URL says
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def test_postgresql_url_gives_every_connection_field() -> None:
    entry = parse_database_url(
        "postgresql://etl:s3cret@db.example.com:6543/warehouse?sslmode=require&connect_timeout=5"
    )

    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["USER"], entry["PASSWORD"]) == ("etl", "s3cret")
    assert (entry["HOST"], entry["PORT"], entry["NAME"]) == ("db.example.com", "6543", "warehouse")
    assert entry["OPTIONS"] == {**POSTGRESQL_DEFAULTS, "sslmode": "require", "connect_timeout": "5"}


def test_postgresql_connections_get_a_connect_timeout_and_tcp_keepalives_by_default() -> None:
    """A host that never answers held every unit for as long as the kernel kept trying,
    and a server gone mid-query (a failover, a cable) for two hours of Linux's keepalive:
    10 s to connect, a vanished peer found within 30 + 3 * 10 s."""
    assert parse_database_url("postgresql://etl@db.internal/etl")["OPTIONS"] == POSTGRESQL_DEFAULTS


def test_the_urls_connect_timeout_and_keepalives_win_over_the_defaults() -> None:
    options = parse_database_url(
        "postgresql://etl@db.internal/etl?connect_timeout=0&keepalives_idle=5&keepalives=0"
    )["OPTIONS"]

    assert options == {
        **POSTGRESQL_DEFAULTS,
        "connect_timeout": "0",
        "keepalives_idle": "5",
        "keepalives": "0",
    }


def test_postgres_scheme_is_an_alias_of_postgresql() -> None:
    assert parse_database_url("postgres://u@h/db") == parse_database_url("postgresql://u@h/db")


def test_percent_encoded_parts_are_decoded() -> None:
    entry = parse_database_url("postgresql://us%40er:p%2Fw%3Ad@%2Fvar%2Frun%2Fpostgresql/my%20db")

    assert (entry["USER"], entry["PASSWORD"]) == ("us@er", "p/w:d")
    assert entry["HOST"] == "/var/run/postgresql"
    assert entry["NAME"] == "my db"


def test_url_without_host_or_port_leaves_them_to_libpq() -> None:
    entry = parse_database_url("postgresql:///etl")

    assert (entry["HOST"], entry["PORT"], entry["USER"]) == ("", "", "")


def test_connection_lifetime_options_become_django_settings() -> None:
    entry = parse_database_url("postgresql://h/db?conn_max_age=60&conn_health_checks=true")

    assert entry["CONN_MAX_AGE"] == 60
    assert entry["CONN_HEALTH_CHECKS"] is True
    assert entry["OPTIONS"] == POSTGRESQL_DEFAULTS


def test_conn_max_age_none_keeps_connections_open() -> None:
    assert parse_database_url("postgresql://h/db?conn_max_age=none")["CONN_MAX_AGE"] is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:topsecret@h/db", "scheme 'mysql' is not supported"),
        ("etl.sqlite3", "has no scheme"),
        ("postgresql://u:topsecret@h:99999/db", "invalid port"),
        ("postgresql://u:topsecret@h:port/db", "invalid port"),
        ("postgresql://u:topsecret@h", "names no database"),
        ("postgresql://u:topsecret@h/a/b", "a database name has no '/'"),
        ("postgresql://u:topsecret@h/db?isolation_level=1", "cannot be expressed in a URL"),
        ("postgresql://u:topsecret@h/db?conn_max_age=soon", "conn_max_age='soon'"),
        ("postgresql://u:topsecret@h/db?conn_health_checks=maybe", "is not a boolean"),
        ("postgresql://u:topsecret@h/db?sslmode=a&sslmode=b", "sets option 'sslmode' more than"),
        ("postgresql://u:topsecret@h/db?novalue", "malformed query string"),
        ("postgresql://u:topsecret@[::1/db", "is malformed"),
        ("sqlite://u:topsecret@host/file.db", "has a host part"),
        ("sqlite:///file.db?journal=wal&password=topsecret", "unknown SQLite option 'journal'"),
        ("sqlite:///file.db?timeout=-1", "not a positive number"),
        ("sqlite:///file.db?transaction_mode=LAZY", "is not one of DEFERRED"),
        ("sqlite:///", "names no file"),
    ],
)
def test_bad_url_is_refused_with_reason_and_no_password(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PGDATABASE", "PGSERVICE"):  # they name a database the URL does not
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(url)

    assert expected in str(caught.value)
    assert "topsecret" not in str(caught.value)
    assert "topsecret" not in caught.value.url


def test_empty_url_is_refused() -> None:
    with pytest.raises(DatabaseUrlError, match="database URL is empty"):
        parse_database_url("  ")


def test_unsupported_scheme_error_lists_the_supported_ones() -> None:
    with pytest.raises(DatabaseUrlError, match=r"expected one of postgresql://, postgres://"):
        parse_database_url("oracle://h/db")


def test_relative_sqlite_path_resolves_against_base_dir(tmp_path: Path) -> None:
    entry = parse_database_url("sqlite:///data/etl.sqlite3", base_dir=tmp_path)

    assert entry["ENGINE"] == "django.db.backends.sqlite3"
    assert entry["NAME"] == str(tmp_path.resolve() / "data" / "etl.sqlite3")


def test_four_slashes_make_an_absolute_sqlite_path(tmp_path: Path) -> None:
    entry = parse_database_url(f"sqlite:///{tmp_path}/etl.sqlite3", base_dir=Path("/elsewhere"))

    assert entry["NAME"] == str(tmp_path.resolve() / "etl.sqlite3")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://:memory:"])
def test_sqlite_memory_forms(url: str) -> None:
    entry = parse_database_url(url)

    assert entry["NAME"] == ":memory:"
    assert "init_command" not in entry["OPTIONS"]


def test_sqlite_defaults_suit_concurrent_workers() -> None:
    options = parse_database_url("sqlite:////tmp/etl.sqlite3")["OPTIONS"]

    assert options["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in options["init_command"]
    assert options["timeout"] > 5


def test_sqlite_options_override_the_defaults() -> None:
    options = parse_database_url(
        "sqlite:////tmp/etl.sqlite3?timeout=2.5&transaction_mode=deferred&init_command="
    )["OPTIONS"]

    assert options == {"timeout": 2.5, "transaction_mode": "DEFERRED", "init_command": ""}


def test_sqlite_url_round_trips_awkward_paths(tmp_path: Path) -> None:
    file = tmp_path / "with space#and?marks%.sqlite3"

    assert parse_database_url(sqlite_url(file))["NAME"] == str(file)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:p@ss/w@rd@h/db", "postgresql://u:***@h/db"),
        (  # the user-info ends at the last '@': hidden up to it (a password's '@' then '?'
            # is not told apart from an '@' in the query), never shown
            "postgresql://u:pw@h/db?application_name=a@b",
            "postgresql://u:***@b",
        ),
        (
            "postgresql://h/db?user=u&password=pw&sslmode=x",
            "postgresql://h/db?user=u&password=***&sslmode=x",
        ),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_hides_passwords(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/from_env")

    assert resolve_database_url("sqlite:///given.sqlite3") == "sqlite:///given.sqlite3"
    assert resolve_database_url() == "postgresql://h/from_env"


def test_the_runtimes_variable_comes_before_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://h/plain")
    monkeypatch.setenv("ETL_DATABASE_URL", "postgresql://h/platform")

    assert resolve_database_url() == "postgresql://h/platform"
    monkeypatch.setenv("ETL_DATABASE_URL", "")
    assert resolve_database_url() == "postgresql://h/plain"


def test_default_is_etl_sqlite3_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ETL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", " ")
    monkeypatch.chdir(tmp_path)

    url = resolve_database_url()

    assert parse_database_url(url)["NAME"] == str(tmp_path.resolve() / "etl.sqlite3")


def test_pgconnect_timeout_in_the_environment_wins_over_the_default_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpq's environment is a documented way to configure it, below the URL: a default
    given as a connection parameter silently overrode it (an operator's 60 s became 10)."""
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "60")

    plain = parse_database_url("postgresql://etl@db.internal/etl")["OPTIONS"]
    in_url = parse_database_url("postgresql://etl@db.internal/etl?connect_timeout=5")["OPTIONS"]

    assert plain == {k: v for k, v in POSTGRESQL_DEFAULTS.items() if k != "connect_timeout"}
    assert in_url["connect_timeout"] == "5"  # the URL still wins over the environment


def test_a_services_own_connect_timeout_and_keepalives_win_over_the_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libpq applies a service file's values only to parameters not given: the defaults,
    given, silently replaced them. The service named in the URL or by PGSERVICE."""
    services = tmp_path / "pg_service.conf"
    services.write_text(
        "# the operator's\n[other]\nkeepalives_count=7\n\n"
        "[prod]\nhost=db.internal\n dbname=etl\nconnect_timeout=30\nkeepalives_idle = 120\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)

    named = parse_database_url("postgresql:///?service=prod")["OPTIONS"]
    monkeypatch.setenv("PGSERVICE", "prod")
    from_env = parse_database_url("postgresql://etl@db.internal/etl?keepalives_idle=5")["OPTIONS"]
    monkeypatch.setenv("PGSERVICE", "elsewhere")  # not in a file we know: libpq's own dir
    unknown = parse_database_url("postgresql://etl@db.internal/etl")["OPTIONS"]

    assert named == {
        "keepalives": "1",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "connect_timeout": "30",  # given: psycopg times the connection, reading no service
        "service": "prod",
    }
    assert from_env == {
        "keepalives": "1",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "connect_timeout": "30",
        "keepalives_idle": "5",
    }
    assert unknown == {}  # its values, whatever they are, must not be overridden


def test_a_service_in_pgsysconfdir_is_read_when_the_user_has_no_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A container's user without a home directory: libpq skips ~/.pg_service.conf and
    reads $PGSYSCONFDIR/pg_service.conf; the URL must still parse."""

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    (tmp_path / "pg_service.conf").write_text("[prod]\nkeepalives=0\n")
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.delenv("PGSERVICEFILE", raising=False)
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path))
    monkeypatch.setenv("PGSERVICE", "prod")

    options = parse_database_url("postgresql://etl@db.internal/etl")["OPTIONS"]

    assert options == {k: v for k, v in POSTGRESQL_DEFAULTS.items() if k != "keepalives"}


def test_a_url_naming_no_database_takes_libpqs_pgdatabase_or_pgservice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """libpq takes the database from PGDATABASE or the service's section when the URL
    names none (``psql postgresql://etl@db/`` works): the door refused such a URL."""
    services = tmp_path / "pg_service.conf"
    services.write_text("[prod]\nhost=db.internal\ndbname=etl_prod\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.setenv("PGDATABASE", "etl_env")

    from_env = parse_database_url("postgresql://etl@db.internal:5432/")
    in_query = parse_database_url("postgresql://etl@db.internal/?dbname=etl_query")
    monkeypatch.setenv("PGSERVICE", "prod")  # its section's dbname, over PGDATABASE
    from_service = parse_database_url("postgresql://etl@")

    assert (from_env["NAME"], from_env["HOST"]) == ("etl_env", "db.internal")
    assert (in_query["NAME"], "dbname" in in_query["OPTIONS"]) == ("etl_query", False)
    assert (from_service["NAME"], from_service["OPTIONS"]["service"]) == ("", "prod")


def test_a_url_naming_no_database_says_exactly_what_to_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither PGDATABASE nor a service: libpq would use a database named after the user,
    a guess; the error says where the name goes and the other ways to give it."""
    for name in ("PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url("postgresql://etl:topsecret@db.internal:5432")
    with pytest.raises(DatabaseUrlError) as twice:
        parse_database_url("postgresql://etl@db.internal/etl?dbname=other")

    assert str(caught.value) == (
        "database URL 'postgresql://etl:***@db.internal:5432' names no database; write its "
        "name after the host: postgresql://etl:***@db.internal:5432/dbname (or name a "
        "service, ?service=name, or set PGDATABASE or PGSERVICE, which libpq reads)"
    )
    assert "names the database twice ('etl' and ?dbname='other')" in str(twice.value)


@pytest.mark.parametrize("value", ["abc", " ", "10s"])
def test_a_pgconnect_timeout_that_is_no_number_is_refused_naming_it_not_the_url(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """The door leaves the connect timeout to PGCONNECT_TIMEOUT when it is set; psycopg
    then refused every connection with "bad value for connect_timeout", said as "correct
    the URL" of a URL that sets none: the operator looked in the wrong place."""
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.setenv("PGCONNECT_TIMEOUT", value)

    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url("postgresql://etl:topsecret@db.internal/etl")
    own = parse_database_url("postgresql://etl@db.internal/etl?connect_timeout=5")  # wins

    assert str(caught.value) == (
        f"PGCONNECT_TIMEOUT={value!r} is not a number of seconds (libpq's connect timeout "
        "for database URL 'postgresql://etl:***@db.internal/etl'); set it to a whole number "
        "of seconds, or unset it"
    )
    assert own["OPTIONS"]["connect_timeout"] == "5"


@pytest.mark.parametrize("value", ["soon", ""])
def test_a_service_connect_timeout_that_is_no_number_is_refused_naming_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    """A service's connect_timeout is given as a parameter: a bad one was said as the
    URL's mistake, the file it is in never named."""
    services = tmp_path / "services.conf"
    services.write_text(f"[prod]\nhost=db.internal\nconnect_timeout={value}\npassword=topsecret\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "5")  # the service's wins, as in libpq
    monkeypatch.delenv("PGSERVICE", raising=False)

    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url("postgresql:///etl?service=prod")

    assert str(caught.value) == (
        f"connect_timeout={value!r} in service 'prod' of {services} is not a number of seconds "
        "(libpq's connect timeout for database URL 'postgresql:///etl?service=prod'); set it "
        "to a whole number of seconds"
    )


@pytest.mark.parametrize(
    ("url", "written"),
    [
        (
            "postgresql:///?host=/var/run/postgresql",
            "postgresql:///dbname?host=/var/run/postgresql",
        ),
        ("postgresql://", "postgresql:///dbname"),
        ("postgres://etl@/", "postgres://etl@/dbname"),
    ],
)
def test_a_socket_url_naming_no_database_is_told_a_spelling_that_keeps_its_slashes(
    monkeypatch: pytest.MonkeyPatch, url: str, written: str
) -> None:
    """The host left to libpq (its socket, ?host=/dir): the spelling offered was
    postgresql:/dbname, which psql refuses and the platform's own readers misread."""
    for name in ("PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(url)

    assert f"write its name after the host: {written} (or" in str(caught.value)
    assert parse_database_url(written.replace("/dbname", "/etl"))["NAME"] == "etl"


def test_a_multi_host_url_gives_libpq_its_comma_separated_hosts_and_ports() -> None:
    """Patroni, pgBouncer pairs, RDS failover: libpq tries each host in turn, the ports
    listed the same way (Django hands HOST and PORT to the driver as they are)."""
    entry = parse_database_url(
        "postgresql://etl:pw@db1:5432,db2:6432/warehouse?target_session_attrs=read-write"
    )

    assert (entry["HOST"], entry["PORT"], entry["NAME"]) == ("db1,db2", "5432,6432", "warehouse")
    assert (entry["USER"], entry["PASSWORD"]) == ("etl", "pw")
    assert entry["OPTIONS"]["target_session_attrs"] == "read-write"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("postgresql://etl@db1,db2/warehouse", "db1,db2", ""),
        ("postgresql://etl@[::1]:5432,DB2.example.com:5433/w", "::1,DB2.example.com", "5432,5433"),
        ("postgresql://etl@%2Frun%2Fpg,db2/warehouse", "/run/pg,db2", ""),
    ],
)
def test_multi_host_urls_without_every_port_or_with_ipv6_and_socket_hosts(
    url: str, host: str, port: str
) -> None:
    entry = parse_database_url(url)

    assert (entry["HOST"], entry["PORT"]) == (host, port)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://etl:s3cret@db1,,db2/w", "host 2 of 3 is empty"),
        ("postgresql://etl:s3cret@db1,db2,/w", "host 3 of 3 is empty"),
        ("postgresql://etl:s3cret@db1:54x2,db2:5432/w", "port '54x2' of host 1 (db1)"),
        ("postgresql://etl:s3cret@db1:5432,db2:99999/w", "port '99999' of host 2 (db2)"),
        ("postgresql://etl:s3cret@db1:5432,[::1/w", "host 2 of 2 ('[::1') has no closing ']'"),
        ("postgresql://etl:s3cret@/w?host=db1,,db2", "host 2 of 3 is empty"),
        ("postgresql://etl:s3cret@/w?host=db1,db2&port=5432,x", "port 'x' (2 of 2 in ?port=)"),
        (
            "postgresql://etl:s3cret@/w?host=db1,db2&port=5432,5433,5434",
            "3 ports (5432,5433,5434) for 2 hosts (db1,db2)",
        ),
        ("postgresql://etl:s3cret@pgb1,pgb2:6432/w", "host 1 has none"),
        ("postgresql://etl:s3cret@db1:5433,db2/w", "host 2 has none"),
        ("postgresql://etl:s3cret@db1,[fd00::2]:5433,db3/w", "hosts 1, 3 have none"),
    ],
)
def test_a_mistyped_multi_host_url_is_refused_naming_the_part(url: str, named: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(url)

    assert named in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in caught.value.url


def test_a_multi_host_urls_password_is_never_shown() -> None:
    url = "postgresql://etl:s3cr@t@db1:5432,db2:5432/warehouse?target_session_attrs=read-write"

    assert redact_url(url) == (
        "postgresql://etl:***@db1:5432,db2:5432/warehouse?target_session_attrs=read-write"
    )
    ipv6_later = "postgresql://etl:s3cr@t@db1,[::1]:5432/warehouse"
    assert redact_message("FATAL: s3cr@t on db1", ipv6_later) == "FATAL: *** on db1"


def test_a_passwords_remains_where_a_host_is_read_are_never_quoted() -> None:
    """An unencoded '/' in the password: what urllib reads as the host list is the
    password's, so the error names the host's position only."""
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url("postgresql://etl:ab@cd:ef/gh@db1,db2/w")

    assert "its password holds an unencoded '/'" in str(caught.value)
    assert "ef" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://etl:Kx7@Qz9?w@db/x", "postgresql://etl:***@db/x"),
        (
            "postgresql://etl:Kx7@Qz9#w@db/x?sslmode=require",
            "postgresql://etl:***@db/x?sslmode=require",
        ),
        ("postgresql://etl:Kx7/Qz9@db1,db2/x", "postgresql://etl:***@db1,db2/x"),
        ("postgres://etl:Kx7?Qz9@db:5432/x", "postgres://etl:***@db:5432/x"),
        ("https://host:8080/a@b", "https://host:8080/a@b"),
        ("https://u:Kx7@host/a@b", "https://u:***@host/a@b"),
    ],
)
def test_a_password_holding_an_unencoded_slash_question_or_hash_is_never_shown(
    url: str, shown: str
) -> None:
    """The user-info of a database URL ends at its last '@' (an '@' after the host is
    implausible there): a password's '@' then '?' or '#' left its rest shown."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://etl:Kx7@Qz9?w@db/x",  # parse_qsl quoted 'w@db/x'
        "postgresql://etl:Kx7@Qz9/w@db/x",  # the database 'w@db/x' was quoted
        "postgresql://etl:Kx7@Qz9#w@db/x",  # the 'write its name after the host' hint
        "postgresql://etl:Kx7/Qz9@db/x",
        "postgresql://etl:Qz9?Kx7@db/x",
    ],
)
def test_a_url_whose_password_holds_an_unencoded_slash_question_or_hash_is_refused_unquoted(
    url: str,
) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        parse_database_url(url)

    said = str(caught.value)
    assert "percent-encode" in said
    shown = caught.value.url
    for part in ("Kx7", "Qz9"):
        assert part not in said
        assert part not in shown
