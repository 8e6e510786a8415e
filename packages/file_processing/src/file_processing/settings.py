"""Settings of the file-processing runtime: the shared runtime settings plus the lane's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from etl_core.config import URL
from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings
from etl_core.setting_checks import SettingChecks
from etl_core.units import ByteSize
from file_processing.limits import UnpackLimits
from file_processing.quality import QualitySettings

__all__ = ["FileProcessingSettings"]

MAX_VISIBILITY_TIMEOUT = timedelta(hours=12)
"""The longest SQS lets a received message stay hidden."""


@dataclass(frozen=True)
class FileProcessingSettings(RuntimeSettings):
    """Everything ``etl-file-processing`` reads from flags, ``ETL_*`` and ``etl.toml``."""

    concurrency: int = 2
    """Landing objects processed at once by ``scan``."""
    chain_transforms: bool = True
    """``worker``: once a delivery is validated, enqueue its partition's transform on the
    ``data_pipeline`` queue (docs/events.md); off, the pipeline's schedule finds it."""
    schedule_scan_interval: timedelta = timedelta(minutes=1)
    """``schedule``: how often landing/ is listed and its new objects enqueued."""
    member_concurrency: int = 4
    """Members of one delivery (an archive's files) checked and published at once."""
    member_batch: int = 200
    """Small members (up to 1 MiB each) checked together in one engine query; 1 checks
    each member on its own. Fewer for wide files (4,000 members x columns at most)."""
    claim_timeout: timedelta = timedelta(hours=1)
    """How long a claim on an object lasts before another worker may take it over."""
    sidecar_grace: timedelta = timedelta(minutes=15)
    """How long a delivery waits for its checksum sidecar before it is quarantined."""
    landing_min_age: timedelta = timedelta(0)
    """Quiet period of a local store's landing files: one (or its checksum sidecar) last
    modified less than this long ago may still be uploading in place (SFTP, FTP, scp write
    a file in pieces) and is left for a later scan, untouched; 0 (the default) takes every
    file at once. S3 objects appear whole when their upload ends: never delayed."""
    max_total_bytes: ByteSize = ByteSize(UnpackLimits.max_total_bytes)
    """Bytes one delivery may unpack or decrypt to, all members together."""
    max_member_bytes: ByteSize = ByteSize(UnpackLimits.max_member_bytes)
    """Bytes of any one unpacked member."""
    max_ratio: float = UnpackLimits.max_ratio
    """Largest uncompressed-to-compressed ratio of one stream (decompression bombs)."""
    max_entries: int = UnpackLimits.max_entries
    """Archive entries across every nesting level."""
    max_depth: int = UnpackLimits.max_depth
    """Archive layers that may be opened, the outermost included."""
    quality_memory_limit: ByteSize = ByteSize("256MiB")
    """DuckDB's memory limit for the quality checks; beyond it, work spills to disk."""
    quality_threads: int = 0
    """DuckDB threads for the quality checks of one object; 0 shares the host's cores among
    the objects processed at once (``concurrency`` of ``scan``, a worker's processes)."""
    quality_top_values: int = QualitySettings.top_values
    """Most frequent values the profile keeps per column; 0 skips that sketch (the costliest)."""
    max_field_bytes: ByteSize = ByteSize(QualitySettings.max_field_bytes)
    """Longest field of a CSV record (UTF-8 bytes); a contract's ``[parse]`` may lower it."""
    max_record_bytes: ByteSize = ByteSize(QualitySettings.max_record_bytes)
    """Longest CSV or JSON record (UTF-8 bytes); a contract's ``[parse]`` may lower it."""
    max_columns: int = QualitySettings.max_columns
    """Most fields a CSV record (distinct keys a JSON file) may have; wider files are refused."""
    json_max_depth: int = QualitySettings.json_max_depth
    """Deepest nesting of arrays and objects in one JSON record."""
    sqs_endpoint_url: URL | None = None
    """SQS-compatible endpoint for ``listen`` (moto, ElasticMQ); AWS when unset."""
    listen_dead_letter_queue: str | None = None
    """``listen``: the SQS queue URL where malformed notifications, and those whose objects
    kept failing, are moved; unset, they are logged whole and deleted."""
    listen_wait_seconds: int = 20
    """``listen``: long polling, seconds one receive waits for a message (0-20)."""
    listen_visibility_timeout: timedelta = timedelta(minutes=15)
    """``listen``: how long a received notification stays hidden while its objects are
    processed or enqueued; unfinished, it is delivered again after this."""
    listen_max_receives: int = 5
    """``listen``: receives of a notification whose objects keep failing before it is
    dead-lettered."""

    def _check(self, checks: SettingChecks) -> None:
        """The file lane's own: its schedule, claims, listener, parsing bounds and engine."""
        super()._check(checks)
        checks.positive_interval("schedule_scan_interval")
        checks.positive_interval("claim_timeout")
        checks.require(self.landing_min_age >= timedelta(0), "landing_min_age", "0s or longer")
        self._check_listener(checks)
        self._check_quality_engine(checks)
        self._check_unpack_limits(checks)
        checks.require(1 <= self.concurrency <= 256, "concurrency", "from 1 to 256")
        for name in ("max_field_bytes", "max_record_bytes", "max_columns"):
            checks.require(getattr(self, name) >= 1, name, "positive")
        checks.require(1 <= self.member_concurrency <= 64, "member_concurrency", "from 1 to 64")
        checks.require(1 <= self.member_batch <= 10_000, "member_batch", "from 1 to 10000")
        checks.require(0 <= self.quality_top_values <= 100, "quality_top_values", "from 0 to 100")

    def _check_listener(self, checks: SettingChecks) -> None:
        """SQS waits 0 to 20 s for a message and keeps one hidden from 0 s to 12 hours."""
        checks.require(0 <= self.listen_wait_seconds <= 20, "listen_wait_seconds", "from 0 to 20")
        checks.require(self.listen_max_receives >= 1, "listen_max_receives", "at least 1")
        checks.require(
            timedelta(0) <= self.listen_visibility_timeout <= MAX_VISIBILITY_TIMEOUT,
            "listen_visibility_timeout",
            "from 0s to 12h (SQS's range)",
        )

    def _check_quality_engine(self, checks: SettingChecks) -> None:
        """Refuse engine settings every file would fail on, or that would run unbounded."""
        checks.require(
            self.quality_threads >= 0, "quality_threads", "0 (a share of the cores) or more"
        )
        checks.require(int(self.quality_memory_limit) > 0, "quality_memory_limit", "above 0 bytes")
        checks.require(self.json_max_depth >= 1, "json_max_depth", "at least 1")

    def _check_unpack_limits(self, checks: SettingChecks) -> None:
        """The unpack limits, refused as :class:`UnpackLimits` refuses them (each positive):
        said at start-up with where each came from, not when the first scan opens them."""
        try:
            self.unpack_limits()
        except ConfigError as refused:
            for error in refused.errors:
                checks.require(False, error.field, "a positive number")

    def unpack_limits(self) -> UnpackLimits:
        """The unpack and decryption limits these settings describe."""
        return UnpackLimits(
            max_total_bytes=int(self.max_total_bytes),
            max_member_bytes=int(self.max_member_bytes),
            max_ratio=self.max_ratio,
            max_entries=self.max_entries,
            max_depth=self.max_depth,
        )

    def quality_settings(self) -> QualitySettings:
        """The quality engine's settings."""
        return QualitySettings(
            memory_limit=self.quality_memory_limit,
            threads=self.quality_threads,
            top_values=self.quality_top_values,
            work_dir=self.work_dir,
            max_field_bytes=self.max_field_bytes,
            max_record_bytes=self.max_record_bytes,
            max_columns=self.max_columns,
            json_max_depth=self.json_max_depth,
        )
