"""``etl_database_schema.retail.CURATED_TABLES`` names each curated model by its table."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

RunPython = Callable[..., subprocess.CompletedProcess[str]]


def test_every_curated_table_names_its_model_and_every_model_keyed_by_day_is_listed(
    run_python: RunPython,
) -> None:
    result = run_python(
        """
        import etl_database_schema as s
        from etl_database_schema.retail import CURATED_TABLES
        s.setup("sqlite:///a.sqlite3")
        from etl_database_schema.retail import models
        named = {t: getattr(models, m)._meta.db_table for t, m in CURATED_TABLES.items()}
        print("named", all(t == table for t, table in named.items()))
        dated = sorted(
            m._meta.db_table for m in vars(models).values()
            if isinstance(m, type) and issubclass(m, models.models.Model)
            and any(f.name == "dt" for f in m._meta.fields)
        )
        print("dated", dated == sorted(CURATED_TABLES))
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["named", "True", "dated", "True"]
