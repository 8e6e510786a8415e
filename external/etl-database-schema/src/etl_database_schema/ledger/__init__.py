"""The operations ledger: runs, processed objects, quarantine, quality, backfills, API, freshness.

Models live in :mod:`etl_database_schema.ledger.models`, importable once Django is set up.
"""
