# mypy: allow-subclassing-any
"""Alerts belong to the object store of the deployment that raised them (``etl_alert.store``).

Two deployments sharing a database (staging and production stores pointing at one
PostgreSQL) opened, resolved and acknowledged each other's alerts in the one unscoped
table. Each store now has its own alerts: at most one active alert per (store,
fingerprint). Existing rows keep everything with ``store`` empty (the database cannot
know which deployment wrote them): the first deployment that touches its alerts adopts
them (:mod:`etl_database_schema.ledger.queries`), as the load fence's rows of
``0006_load_fence_store`` are adopted by the next load. The new unique key is added
before the old one is removed (the table always has one).

Migrating back keeps every row: of the active alerts of one fingerprint in several
stores, the one updated last stays active and the others are resolved (as of their last
update, kept as history), so the old key (one active alert per fingerprint) can be
restored; then the column goes.
"""

from typing import Any

from django.db import migrations, models

_RESOLVE_DUPLICATES = (
    "UPDATE etl_alert SET state = 'resolved', resolved_at = updated_at "
    "WHERE state <> 'resolved' AND EXISTS (SELECT 1 FROM etl_alert AS kept "
    "WHERE kept.fingerprint = etl_alert.fingerprint AND kept.state <> 'resolved' "
    "AND (kept.updated_at > etl_alert.updated_at "
    "OR (kept.updated_at = etl_alert.updated_at AND kept.id > etl_alert.id)))"
)
"""Of each fingerprint's active alerts (one per store), all but the one updated last."""


def _one_active_per_fingerprint(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute(_RESOLVE_DUPLICATES)


class Migration(migrations.Migration):
    dependencies = [
        ("etl_ledger", "0006_load_fence_store"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="store",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text=(
                    "The object store of the deployment the alert belongs to (its canonical "
                    "root URL); empty: written before 0007, adopted by the first deployment "
                    "touching it."
                ),
                max_length=1000,
            ),
        ),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "resolved"), _negated=True),
                fields=("store", "fingerprint"),
                name="etl_alert_one_active_per_store_fingerprint",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="alert",
            name="etl_alert_one_active_per_fingerprint",
        ),
        migrations.AddIndex(
            model_name="alert",
            index=models.Index(fields=["store", "-opened_at"], name="etl_alert_store_time_idx"),
        ),
        migrations.RunPython(
            migrations.RunPython.noop, _one_active_per_fingerprint, elidable=False
        ),
    ]
