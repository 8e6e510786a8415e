"""The retail domain: reference tables read by enrichment and curated tables written by loads.

Models live in :mod:`etl_database_schema.retail.models`, importable once Django is set up.
"""

__all__ = ["CURATED_TABLES"]

CURATED_TABLES = {
    "retail_daily_sales": "DailySales",
    "retail_sales_transaction": "SalesTransaction",
    "retail_store_footfall": "StoreFootfall",
}
"""Curated table → its model in :mod:`~etl_database_schema.retail.models`: the tables loads
write, one partition date ``dt`` at a time (readable before Django is set up)."""
