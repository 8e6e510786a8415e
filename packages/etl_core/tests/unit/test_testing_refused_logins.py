"""The URLs ``refused_login_urls`` gives: refused for what they say is wrong, on any server."""

from __future__ import annotations

from urllib.parse import urlsplit

from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD, refused_login_urls_on


def test_a_server_asking_for_a_password_refuses_the_missing_database_not_the_password() -> None:
    # the server checks the password before the database: the test server's own must be kept
    urls = refused_login_urls_on("postgresql://etl:s3cret@db.example:6543/etl")

    database = urlsplit(urls["database"])
    assert (database.username, database.password) == ("etl", "s3cret")
    assert (database.hostname, database.port, database.path) == (
        "db.example",
        6543,
        "/etl_no_such_database",
    )
    role = urlsplit(urls["role"])
    assert (role.username, role.password, role.path) == (
        "etl_no_such_role",
        REFUSED_LOGIN_PASSWORD,
        "/etl",
    )


def test_a_server_trusting_local_logins_is_given_the_password_no_message_may_show() -> None:
    urls = refused_login_urls_on("postgresql://postgres@127.0.0.1:5432/postgres")

    assert {urlsplit(url).password for url in urls.values()} == {REFUSED_LOGIN_PASSWORD}
    assert urlsplit(urls["database"]).username == "postgres"
