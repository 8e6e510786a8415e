"""The retail domain: reference tables read by enrichment and curated tables written by loads.

Models live in :mod:`etl_database_schema.retail.models`, importable once Django is set up.
"""
