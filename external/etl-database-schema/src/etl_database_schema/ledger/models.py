"""Operational tables: the platform's ledger of what ran, what was processed and how fresh data is.

Concurrency rules the tables enforce, so several workers can share one database:

* natural keys are unique constraints (run id, landing key + ETag, quarantine key,
  backfill job + partition date, API source + endpoint), so a second worker's insert of
  the same unit fails instead of duplicating it;
* every state column is a choice backed by a ``CheckConstraint``, so no writer can store
  a state the others do not understand;
* "latest by dataset" reads are served by ``(dataset, -time)`` indexes.
"""

# mypy: allow-subclassing-any
# (Django ships no type information, so its base classes are Any to mypy.)

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone


class Lane(models.TextChoices):
    """The runtime that did the work."""

    FILE_PROCESSING = "file_processing", "File processing"
    DATA_PIPELINE = "data_pipeline", "Data pipeline"
    OBSERVABILITY = "observability", "Observability"


class RunStatus(models.TextChoices):
    """Outcome of a run; ``partial`` is exit code 3 (completed, some inputs quarantined)."""

    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Completed with quarantined inputs or failed checks"
    FAILED = "failed", "Failed"


class ObjectState(models.TextChoices):
    """Where the processing of one landing object stands."""

    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    QUARANTINED = "quarantined", "Quarantined"
    FAILED = "failed", "Failed"


class QualityOutcome(models.TextChoices):
    """Overall data-quality verdict on one object."""

    NOT_CHECKED = "not_checked", "Not checked"
    PASSED = "passed", "Passed"
    WARNED = "warned", "Passed with warnings"
    FAILED = "failed", "Failed"


class CheckSeverity(models.TextChoices):
    """What a failing check does: ``error`` quarantines, ``warning`` only reports."""

    ERROR = "error", "Error"
    WARNING = "warning", "Warning"


class CheckOutcome(models.TextChoices):
    """Result of one quality check."""

    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class BackfillState(models.TextChoices):
    """Lifecycle of a backfill job or of one of its partitions."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class FreshnessLevel(models.TextChoices):
    """Freshness verdict of a dataset against its thresholds."""

    OK = "ok", "OK"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
    UNKNOWN = "unknown", "Unknown (no data seen)"


def _choice(field: str, choices: type[models.TextChoices], table: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}), name=f"{table}_{field}_valid"
    )


class PipelineRun(models.Model):
    """One execution of a job by a runtime, with its counts and final status."""

    run_id = models.CharField(max_length=64, unique=True, help_text="The runtime's run id.")
    lane = models.CharField(max_length=32, choices=Lane.choices)
    job = models.CharField(max_length=100, help_text="Subcommand or job name, e.g. 'transform'.")
    dataset = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    parameters = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    inputs_count = models.PositiveBigIntegerField(default=0)
    outputs_count = models.PositiveBigIntegerField(default=0)
    quarantined_count = models.PositiveBigIntegerField(default=0)
    failed_count = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    holder = models.JSONField(
        default=dict,
        blank=True,
        null=True,  # a process of the release before it still inserts rows without it
        help_text="The process running it (host, pid, ...): a later run on the host finishes "
        "a run whose process is gone as failed.",
    )

    class Meta:
        db_table = "etl_pipeline_run"
        constraints = [
            _choice("lane", Lane, "etl_pipeline_run"),
            _choice("status", RunStatus, "etl_pipeline_run"),
            models.CheckConstraint(
                condition=(
                    Q(status=RunStatus.RUNNING, finished_at__isnull=True)
                    | (~Q(status=RunStatus.RUNNING) & Q(finished_at__isnull=False))
                ),
                name="etl_pipeline_run_finished_iff_done",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=F("started_at")),
                name="etl_pipeline_run_finished_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "-started_at"], name="etl_run_dataset_started_idx"),
            models.Index(fields=["lane", "job", "-started_at"], name="etl_run_lane_job_idx"),
            models.Index(
                fields=["started_at"], condition=Q(status="running"), name="etl_run_running_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lane}/{self.job} {self.run_id} ({self.status})"


class ProcessedObject(models.Model):
    """A landing object seen by the platform, identified by key + ETag (content hash locally)."""

    key = models.CharField(max_length=1024, help_text="Object key in the store.")
    etag = models.CharField(max_length=255, help_text="ETag, or content hash on local storage.")
    state = models.CharField(
        max_length=16, choices=ObjectState.choices, default=ObjectState.PROCESSING
    )
    dataset = models.CharField(max_length=200, blank=True, default="", help_text="'' = unknown.")
    partition_date = models.DateField(null=True, blank=True)
    content_hash = models.CharField(max_length=128, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    output_keys = models.JSONField(default=list, blank=True)
    quality_outcome = models.CharField(
        max_length=16, choices=QualityOutcome.choices, default=QualityOutcome.NOT_CHECKED
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    run = models.ForeignKey(
        PipelineRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="processed_objects",
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "etl_processed_object"
        constraints = [
            models.UniqueConstraint(fields=["key", "etag"], name="etl_processed_object_key_etag"),
            _choice("state", ObjectState, "etl_processed_object"),
            _choice("quality_outcome", QualityOutcome, "etl_processed_object"),
        ]
        indexes = [
            models.Index(fields=["dataset", "-updated_at"], name="etl_obj_dataset_updated_idx"),
            models.Index(fields=["dataset", "partition_date"], name="etl_obj_dataset_dt_idx"),
            models.Index(fields=["content_hash"], name="etl_obj_content_hash_idx"),
            models.Index(
                fields=["updated_at"],
                condition=Q(state="processing"),
                name="etl_obj_processing_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.etag} ({self.state})"


class QuarantineRecord(models.Model):
    """An object moved to ``quarantine/``: why, which checks failed, and whether it was released."""

    quarantine_key = models.CharField(max_length=1024, unique=True)
    source_key = models.CharField(max_length=1024)
    source_etag = models.CharField(max_length=255, blank=True, default="")
    processed_object = models.ForeignKey(
        ProcessedObject,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="quarantine_records",
    )
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset = models.CharField(max_length=200, blank=True, default="", help_text="'' = unknown.")
    partition_date = models.DateField(null=True, blank=True)
    reason_code = models.CharField(max_length=64, help_text="e.g. 'quality.failed'.")
    message = models.TextField()
    failed_checks = models.JSONField(default=list, blank=True)
    quarantined_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "etl_quarantine_record"
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason_code=""), name="etl_quarantine_record_reason_code_set"
            ),
            models.CheckConstraint(
                condition=(
                    Q(released_at__isnull=True, released_by="")
                    | (Q(released_at__isnull=False) & ~Q(released_by=""))
                ),
                name="etl_quarantine_record_release_complete",
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "-quarantined_at"], name="etl_quar_dataset_time_idx"),
            models.Index(fields=["reason_code"], name="etl_quar_reason_idx"),
            models.Index(fields=["source_key", "source_etag"], name="etl_quar_source_idx"),
            models.Index(
                fields=["dataset"], condition=Q(released_at__isnull=True), name="etl_quar_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quarantine_key} ({self.reason_code})"


class QualityResult(models.Model):
    """The result of one quality check on one object (or on a curated partition)."""

    processed_object = models.ForeignKey(
        ProcessedObject,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_results",
    )
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset = models.CharField(max_length=200)
    partition_date = models.DateField(null=True, blank=True)
    check_name = models.CharField(max_length=200)
    column_name = models.CharField(max_length=200, blank=True, default="")
    severity = models.CharField(max_length=16, choices=CheckSeverity.choices)
    outcome = models.CharField(max_length=16, choices=CheckOutcome.choices)
    checked_count = models.PositiveBigIntegerField(null=True, blank=True, help_text="Rows seen.")
    failed_count = models.PositiveBigIntegerField(default=0, help_text="Rows failing the check.")
    observed = models.JSONField(default=dict, blank=True, help_text="Observed values, samples.")
    message = models.TextField(blank=True, default="")
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "etl_quality_result"
        constraints = [
            models.UniqueConstraint(
                fields=["processed_object", "check_name", "column_name"],
                condition=Q(processed_object__isnull=False),
                name="etl_quality_result_object_check",
            ),
            _choice("severity", CheckSeverity, "etl_quality_result"),
            _choice("outcome", CheckOutcome, "etl_quality_result"),
            models.CheckConstraint(
                condition=Q(checked_count__isnull=True) | Q(failed_count__lte=F("checked_count")),
                name="etl_quality_result_failed_within_checked",
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "-checked_at"], name="etl_qual_dataset_time_idx"),
            models.Index(
                fields=["dataset", "check_name", "-checked_at"], name="etl_qual_check_time_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}:{self.check_name} {self.outcome}"


class BackfillJob(models.Model):
    """A request to (re)build a dataset's partitions over a date range."""

    dataset = models.CharField(max_length=200)
    start_date = models.DateField()
    end_date = models.DateField(help_text="Inclusive.")
    state = models.CharField(
        max_length=16, choices=BackfillState.choices, default=BackfillState.PENDING
    )
    requested_by = models.CharField(max_length=200, blank=True, default="")
    parameters = models.JSONField(default=dict, blank=True)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "etl_backfill_job"
        constraints = [
            _choice("state", BackfillState, "etl_backfill_job"),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="etl_backfill_job_range_ordered"
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="etl_backfill_job_max_attempts_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "-created_at"], name="etl_bfjob_dataset_idx"),
            models.Index(fields=["state"], name="etl_bfjob_state_idx"),
        ]

    def __str__(self) -> str:
        return f"backfill {self.dataset} {self.start_date}..{self.end_date} ({self.state})"


class BackfillPartition(models.Model):
    """One partition date of a backfill job; workers claim pending ones and record attempts."""

    job = models.ForeignKey(BackfillJob, on_delete=models.CASCADE, related_name="partitions")
    partition_date = models.DateField()
    state = models.CharField(
        max_length=16, choices=BackfillState.choices, default=BackfillState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    claimed_by = models.CharField(max_length=200, blank=True, default="", help_text="host:pid")
    rows_written = models.PositiveBigIntegerField(null=True, blank=True)
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "etl_backfill_partition"
        constraints = [
            models.UniqueConstraint(
                fields=["job", "partition_date"], name="etl_backfill_partition_job_date"
            ),
            _choice("state", BackfillState, "etl_backfill_partition"),
        ]
        indexes = [
            models.Index(
                fields=["job", "state", "partition_date"], name="etl_bfpart_job_state_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.partition_date} ({self.state})"


class ApiIngestionState(models.Model):
    """Where ingestion of one API endpoint stands: its cursor and high-water mark."""

    source = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=500)
    cursor = models.TextField(blank=True, default="", help_text="Opaque pagination cursor.")
    high_water_mark = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    records_total = models.PositiveBigIntegerField(default=0)
    last_run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "etl_api_ingestion_state"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "endpoint"], name="etl_api_ingestion_state_source_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.endpoint}"


class FreshnessStatus(models.Model):
    """History of a dataset's freshness level: one row each time the level is observed to change.

    The history belongs to the object store of the deployment that recorded it
    (``store``): two deployments sharing a database (staging and production) monitoring
    a dataset of the same name keep their histories apart
    (``etl_ledger.0008_freshness_store``). A row written before the store was kept has
    ``store`` empty; the first deployment that records or reads the dataset's level
    adopts the dataset's rows.
    """

    store = models.CharField(
        max_length=1000,
        blank=True,
        db_default="",
        help_text=(
            "The object store of the deployment that recorded the level (its canonical "
            "root URL); empty: written before 0008, adopted by the first deployment "
            "touching the dataset's history."
        ),
    )
    dataset = models.CharField(max_length=200)
    level = models.CharField(max_length=16, choices=FreshnessLevel.choices)
    observed_age = models.DurationField(null=True, blank=True, help_text="None: no data seen.")
    latest_partition = models.DateField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "etl_freshness_status"
        constraints = [
            _choice("level", FreshnessLevel, "etl_freshness_status"),
            models.CheckConstraint(
                condition=Q(observed_age__isnull=True) | Q(observed_age__gte=timedelta(0)),
                name="etl_freshness_status_age_not_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["store", "dataset", "-changed_at"], name="etl_fresh_store_dataset_idx"
            ),
        ]

    def __str__(self) -> str:
        at = f"{self.changed_at:%Y-%m-%dT%H:%M:%SZ}"
        return f"{self.dataset} {self.level} at {at} of {self.store!r}"


class AlertLevel(models.TextChoices):
    """How bad an alert's condition is (a monitor's ``warn`` or ``critical``)."""

    WARN = "warn", "Warn"
    CRITICAL = "critical", "Critical"


class AlertState(models.TextChoices):
    """Where an alert stands: ``open`` sends reminders, ``resolved`` ends it."""

    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed until a time"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One episode of a monitor's condition on a dataset, from opened to resolved.

    It sits beside :class:`FreshnessStatus` (a dataset's level history): an alert is per
    monitor (and zone) and changes state after it is written (acknowledged, snoozed,
    resolved), so its rows are updated, not appended. Alerts belong to the object store of
    the deployment that raised them (``store``): two deployments sharing a database
    (staging and production) keep theirs apart (``etl_ledger.0007_alert_store``). At most
    one alert per store and fingerprint is not resolved; the resolved ones are the alert
    history. A row written before the store was kept has ``store`` empty; the first
    deployment that touches its alerts adopts it.
    """

    store = models.CharField(
        max_length=1000,
        blank=True,
        db_default="",
        help_text=(
            "The object store of the deployment the alert belongs to (its canonical root "
            "URL); empty: written before 0007, adopted by the first deployment touching it."
        ),
    )
    fingerprint = models.CharField(max_length=64, help_text="Dataset + monitor (+ zone) digest.")
    dataset = models.CharField(max_length=200)
    monitor = models.CharField(max_length=64)
    subject = models.CharField(max_length=200, blank=True, default="", help_text="Zone or feed.")
    level = models.CharField(max_length=16, choices=AlertLevel.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    summary = models.TextField(blank=True, default="")
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="Last notification.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True, default="")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    owed_event = models.CharField(
        max_length=16,
        null=True,
        blank=True,
        help_text="The latest event not yet told to every channel (the alert's outbox).",
    )
    owed_at = models.DateTimeField(null=True, blank=True, help_text="When that event happened.")
    owed_to = models.JSONField(
        default=list,
        blank=True,
        null=True,
        help_text="The channels (kind and URL reference) still owed it.",
    )

    class Meta:
        db_table = "etl_alert"
        constraints = [
            _choice("level", AlertLevel, "etl_alert"),
            _choice("state", AlertState, "etl_alert"),
            models.UniqueConstraint(
                fields=["store", "fingerprint"],
                condition=~Q(state=AlertState.RESOLVED),
                name="etl_alert_one_active_per_store_fingerprint",
            ),
            models.CheckConstraint(
                condition=(
                    Q(state=AlertState.RESOLVED, resolved_at__isnull=False)
                    | (~Q(state=AlertState.RESOLVED) & Q(resolved_at__isnull=True))
                ),
                name="etl_alert_resolved_iff_resolved_at",
            ),
            models.CheckConstraint(
                condition=~Q(state=AlertState.SNOOZED) | Q(snoozed_until__isnull=False),
                name="etl_alert_snoozed_until_set",
            ),
        ]
        indexes = [
            models.Index(fields=["state"], name="etl_alert_state_idx"),
            models.Index(fields=["dataset", "-opened_at"], name="etl_alert_dataset_time_idx"),
            models.Index(fields=["store", "-opened_at"], name="etl_alert_store_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset}/{self.monitor} {self.fingerprint} of {self.store!r} ({self.state})"


class LoadFence(models.Model):
    """The newest fencing token a curated partition was loaded under, per lease.

    One row per (curated table, ``dt``, partition lease): the transaction that makes a
    load's rows visible (the partition swap on PostgreSQL, the ``DELETE`` and ``INSERT``s
    elsewhere) records its lease's token here by a conditional upsert and is rolled back
    when the row holds a newer one (:mod:`etl_database_schema.load_fences`). So a loader
    whose lease was taken over, and whose successor already loaded the day, never replaces
    the successor's rows, however long it stalled after its lease check (migration
    ``etl_ledger.0005_load_fence``). Tokens are compared only within one lease of one
    store: two leases' tokens count independently, and so do two object stores' (staging
    and production sharing a database, a store re-created elsewhere: their leases' tokens
    are unrelated; ``etl_ledger.0006_load_fence_store``). A row recorded before the store
    was part of the key has ``store`` empty; the next load of its day under its lease
    adopts it. It is the loads' bookkeeping, not domain data, so it lives in the ledger (as
    the API ingestion state does).
    """

    store = models.CharField(
        max_length=1000,
        blank=True,
        db_default="",
        help_text=(
            "The object store holding the lease (its canonical root URL); empty: recorded "
            "before 0006, adopted by the next load of the day under the lease."
        ),
    )
    table_name = models.CharField(max_length=63, help_text="The curated table loaded.")
    dt = models.DateField(help_text="The partition date loaded.")
    lease = models.CharField(
        max_length=500, help_text="The lease the load held (its key in the object store)."
    )
    token = models.BigIntegerField(help_text="The newest fencing token loaded under.")
    loaded_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "etl_load_fence"
        constraints = [
            models.UniqueConstraint(
                fields=["store", "table_name", "dt", "lease"],
                name="etl_load_fence_store_partition_lease",
            ),
            models.CheckConstraint(
                condition=Q(token__gte=0), name="etl_load_fence_token_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.table_name} {self.dt} {self.lease} of {self.store!r}: token {self.token}"
