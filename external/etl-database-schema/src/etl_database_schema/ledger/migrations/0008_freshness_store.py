# mypy: allow-subclassing-any
"""A dataset's freshness history belongs to the object store of the deployment that
recorded it (``etl_freshness_status.store``).

Two deployments sharing a database (staging and production stores pointing at one
PostgreSQL) monitoring a dataset of the same name interleaved their level changes in the
one unscoped history: each recorded a change whenever the other's level differed, and
read the other's level. Each store now has its own history of each dataset. Existing
rows keep everything with ``store`` empty (the database cannot know which deployment
wrote them): the first deployment that records or reads a dataset's level adopts that
dataset's rows (:mod:`etl_database_schema.ledger.queries`), as the alerts of
``0007_alert_store`` are adopted. The history's index is keyed by the store first (every
read names it); the old ``(dataset, -changed_at)`` index goes.

Migrating back keeps every row (the history has no unique key); the stores' histories of
one dataset are then one history again, as before.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("etl_ledger", "0007_alert_store"),
    ]

    operations = [
        migrations.AddField(
            model_name="freshnessstatus",
            name="store",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text=(
                    "The object store of the deployment that recorded the level (its "
                    "canonical root URL); empty: written before 0008, adopted by the first "
                    "deployment touching the dataset's history."
                ),
                max_length=1000,
            ),
        ),
        migrations.AddIndex(
            model_name="freshnessstatus",
            index=models.Index(
                fields=["store", "dataset", "-changed_at"], name="etl_fresh_store_dataset_idx"
            ),
        ),
        migrations.RemoveIndex(
            model_name="freshnessstatus",
            name="etl_fresh_dataset_time_idx",
        ),
    ]
