"""Django app configuration of the retail domain."""

# mypy: allow-subclassing-any
# (Django ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

from django.apps import AppConfig


class RetailConfig(AppConfig):
    """The ``etl_retail`` app: reference and curated retail tables."""

    name = "etl_database_schema.retail"
    label = "etl_retail"
    verbose_name = "Retail reference and curated data"
    default_auto_field = "django.db.models.BigAutoField"
