"""The ``CREATE INDEX`` statements of a staging table: longest builds first, B-trees packed."""

from __future__ import annotations

from typing import Any

from etl_database_schema.partitions import staging_index_builds

INDEX = "CREATE {}INDEX {} ON ONLY public.t USING {}"
INDEXES = [  # as pg_index lists them for index_definitions: primary key first, then by name
    ("t_pkey", "PRIMARY KEY (id, dt)", INDEX.format("UNIQUE ", "t_pkey", "btree (id, dt)"), True),
    ("t_line", "UNIQUE (dt, k)", INDEX.format("UNIQUE ", "t_line", "btree (dt, k)"), True),
    ("t_sku", "", INDEX.format("", "t_sku", "btree (sku)"), False),
    ("t_hash", "", INDEX.format("", "t_hash", "hash (sku)"), False),
    ("t_own", "", INDEX.format("", "t_own", "btree (a) WITH (fillfactor='70')"), False),
]


class Catalog:
    """A cursor answering index_definitions' one query with ``INDEXES``."""

    def execute(self, sql: str, params: Any = None) -> None:
        assert "FROM pg_index" in sql

    def fetchall(self) -> list[tuple[str, str, str, bool]]:
        return INDEXES


def test_plain_indexes_are_built_first_and_the_primary_key_last_keeping_their_numbers() -> None:
    builds = staging_index_builds(Catalog(), "t", "s")

    assert [b.split(" ON ")[0] for b in builds] == [
        'CREATE INDEX "s_2"',
        'CREATE INDEX "s_3"',
        'CREATE INDEX "s_4"',
        'CREATE UNIQUE INDEX "s_1"',
        'CREATE UNIQUE INDEX "s_0"',
    ]


def test_btrees_without_their_own_storage_parameters_are_packed_full() -> None:
    builds = staging_index_builds(Catalog(), "t", "s")

    assert builds == [
        'CREATE INDEX "s_2" ON "s" USING btree (sku) WITH (fillfactor = 100)',
        'CREATE INDEX "s_3" ON "s" USING hash (sku)',
        'CREATE INDEX "s_4" ON "s" USING btree (a) WITH (fillfactor=\'70\')',
        'CREATE UNIQUE INDEX "s_1" ON "s" USING btree (dt, k) WITH (fillfactor = 100)',
        'CREATE UNIQUE INDEX "s_0" ON "s" USING btree (id, dt) WITH (fillfactor = 100)',
    ]
