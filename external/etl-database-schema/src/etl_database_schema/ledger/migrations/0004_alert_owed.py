# mypy: allow-subclassing-any
"""The alert is its own outbox: the latest event a channel was not told yet (nullable, so a
process of the previous release, which writes no outbox, can still write its alerts)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("etl_ledger", "0003_pipelinerun_holder"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="owed_event",
            field=models.CharField(
                blank=True,
                help_text="The latest event not yet told to every channel (the alert's outbox).",
                max_length=16,
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="alert",
            name="owed_at",
            field=models.DateTimeField(
                blank=True, help_text="When that event happened.", null=True
            ),
        ),
        migrations.AddField(
            model_name="alert",
            name="owed_to",
            field=models.JSONField(
                blank=True,
                default=list,
                null=True,
                help_text="The channels (kind and URL reference) still owed it.",
            ),
        ),
    ]
