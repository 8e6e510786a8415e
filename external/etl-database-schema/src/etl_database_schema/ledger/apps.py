"""Django app configuration of the operations ledger."""

# mypy: allow-subclassing-any
# (Django ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The ``etl_ledger`` app: the platform's operational tables."""

    name = "etl_database_schema.ledger"
    label = "etl_ledger"
    verbose_name = "ETL operations ledger"
    default_auto_field = "django.db.models.BigAutoField"
