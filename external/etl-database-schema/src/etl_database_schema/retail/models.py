"""The retail domain: a chain of stores selling products.

Reference tables (:class:`Store`, :class:`Product`) are maintained by the business and
read by enrichment joins. Curated tables (:class:`SalesTransaction`, :class:`DailySales`,
:class:`StoreFootfall`) are written by loads, one partition date ``dt`` at a time, so a
re-run replaces the partition instead of duplicating it. On PostgreSQL the sales tables are
partitioned tables, a partition per day, primary key ``(id, dt)`` (migration
``0003_partitioned_curated``; the model state keeps ``id`` as its primary key): a load
attaches a freshly built partition in place of the day's
(:mod:`etl_database_schema.partitions`); their code columns compare bytewise and their
secondary indexes key the code alone there (``0004_bytewise_code_keys``, names kept). Other
curated tables, and every table on SQLite,
are loaded by deleting the day's rows and inserting the new ones in one transaction. Each
curated table's unique key leads with ``dt``.

Curated rows carry store and product *codes* rather than foreign keys: loads run in bulk
and must not fail because a reference row arrives a day late, and the enrichment
attributes they need (region, category) are copied onto the row at transform time.
"""

# mypy: allow-subclassing-any
# (Django ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length, Now, Upper
from django.db.models.lookups import Exact


class Store(models.Model):
    """A shop of the chain; enrichment adds its region and country to sales."""

    store_code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=100)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, upper case.")
    city = models.CharField(max_length=100, blank=True, default="")
    opened_on = models.DateField(null=True, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "retail_store"
        constraints = [
            models.CheckConstraint(
                condition=Q(country=Upper("country")) & Q(Exact(Length("country"), 2)),
                name="retail_store_country_iso",
            ),
            models.CheckConstraint(
                condition=(
                    Q(closed_on__isnull=True)
                    | Q(opened_on__isnull=True)
                    | Q(closed_on__gte=F("opened_on"))
                ),
                name="retail_store_closed_after_opened",
            ),
        ]
        indexes = [models.Index(fields=["region"], name="retail_store_region_idx")]

    def __str__(self) -> str:
        return f"{self.store_code} {self.name}"


class Product(models.Model):
    """An article sold by the chain; enrichment adds its category and brand to sales."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=300)
    category = models.CharField(max_length=100)
    subcategory = models.CharField(max_length=100, blank=True, default="")
    brand = models.CharField(max_length=100, blank=True, default="")
    list_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. 'EUR'.")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "retail_product"
        constraints = [
            models.CheckConstraint(
                condition=Q(list_price__isnull=True) | Q(list_price__gte=0),
                name="retail_product_price_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["category"], name="retail_product_category_idx")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class SalesTransaction(models.Model):
    """One line of a till receipt, enriched; partitioned by ``dt`` (the sale's local date)."""

    dt = models.DateField(help_text="Partition date.")
    transaction_id = models.CharField(max_length=64)
    line_number = models.PositiveIntegerField()
    sold_at = models.DateTimeField()
    store_code = models.CharField(max_length=32)
    sku = models.CharField(max_length=64)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, help_text="< 0 for returns.")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    region = models.CharField(max_length=100, blank=True, db_default="")
    category = models.CharField(max_length=100, blank=True, db_default="")
    run_id = models.CharField(max_length=64, blank=True, db_default="", help_text="Loading run.")
    loaded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "retail_sales_transaction"
        constraints = [
            models.UniqueConstraint(
                fields=["dt", "transaction_id", "line_number"], name="retail_sales_transaction_line"
            ),
        ]
        indexes = [
            models.Index(fields=["store_code", "dt"], name="retail_txn_store_dt_idx"),
            models.Index(fields=["sku", "dt"], name="retail_txn_sku_dt_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.dt} {self.transaction_id}/{self.line_number}"


class DailySales(models.Model):
    """Units and revenue per store, product and day; partitioned by ``dt``."""

    dt = models.DateField(help_text="Partition date.")
    store_code = models.CharField(max_length=32)
    sku = models.CharField(max_length=64)
    region = models.CharField(max_length=100, blank=True, db_default="")
    category = models.CharField(max_length=100, blank=True, db_default="")
    units = models.DecimalField(max_digits=14, decimal_places=3)
    revenue = models.DecimalField(max_digits=16, decimal_places=2)
    transactions = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    run_id = models.CharField(max_length=64, blank=True, db_default="", help_text="Loading run.")
    loaded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "retail_daily_sales"
        verbose_name_plural = "daily sales"
        constraints = [
            models.UniqueConstraint(
                fields=["dt", "store_code", "sku"], name="retail_daily_sales_store_sku"
            ),
        ]
        indexes = [models.Index(fields=["store_code", "dt"], name="retail_daily_store_dt_idx")]

    def __str__(self) -> str:
        return f"{self.dt} {self.store_code} {self.sku}"


class StoreFootfall(models.Model):
    """Visitors counted at a store's doors over one day; partitioned by ``dt``.

    Loaded from the footfall counters' API (hourly counts summed per store and day).
    """

    dt = models.DateField(help_text="Partition date: the day counted.")
    store_code = models.CharField(max_length=32)
    region = models.CharField(max_length=100, blank=True, db_default="")
    visitors = models.PositiveIntegerField(help_text="People counted entering.")
    exits = models.PositiveIntegerField(help_text="People counted leaving.")
    hours_counted = models.PositiveSmallIntegerField(help_text="Hourly counts summed.")
    peak_hour = models.DateTimeField(help_text="Start of the hour with the most visitors.")
    peak_hour_visitors = models.PositiveIntegerField()
    run_id = models.CharField(max_length=64, blank=True, db_default="", help_text="Loading run.")
    loaded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "retail_store_footfall"
        verbose_name_plural = "store footfall"
        constraints = [
            models.UniqueConstraint(fields=["dt", "store_code"], name="retail_footfall_store_day"),
        ]
        indexes = [models.Index(fields=["store_code", "dt"], name="retail_footfall_store_dt_idx")]

    def __str__(self) -> str:
        return f"{self.dt} {self.store_code}"
