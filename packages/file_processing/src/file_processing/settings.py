"""Settings of the file-processing runtime: the shared runtime settings plus the lane's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from etl_core.config import URL
from etl_core.runtime import RuntimeSettings
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

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_interval("schedule_scan_interval", self.schedule_scan_interval)
        self._positive_interval("claim_timeout", self.claim_timeout)
        self._check_visibility_timeout()
        self._check_quality_engine()
        if not 1 <= self.concurrency <= 256:
            raise ValueError(f"concurrency must be from 1 to 256, got {self.concurrency}")
        for name in ("max_field_bytes", "max_record_bytes", "max_columns"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.listen_wait_seconds <= 20:
            raise ValueError(
                f"listen_wait_seconds must be from 0 to 20, got {self.listen_wait_seconds}"
            )
        if self.listen_max_receives < 1:
            raise ValueError(
                f"listen_max_receives must be at least 1, got {self.listen_max_receives}"
            )
        if not 1 <= self.member_concurrency <= 64:
            raise ValueError(
                f"member_concurrency must be from 1 to 64, got {self.member_concurrency}"
            )
        if not 1 <= self.member_batch <= 10_000:
            raise ValueError(f"member_batch must be from 1 to 10000, got {self.member_batch}")
        if not 0 <= self.quality_top_values <= 100:
            raise ValueError(
                f"quality_top_values must be from 0 to 100, got {self.quality_top_values}"
            )

    def _check_visibility_timeout(self) -> None:
        """SQS keeps a message hidden from 0 s (visible again at once) to 12 hours."""
        seconds = self.listen_visibility_timeout.total_seconds()
        if not 0 <= seconds <= MAX_VISIBILITY_TIMEOUT.total_seconds():
            raise ValueError(
                f"listen_visibility_timeout must be from 0s to 12h (SQS's range), got {seconds:g}s"
            )

    def _check_quality_engine(self) -> None:
        """Refuse engine settings every file would fail on, or that would run unbounded."""
        if self.quality_threads < 0:
            raise ValueError(
                "quality_threads must be 0 (a share of the cores) or more, got "
                f"{self.quality_threads}"
            )
        if int(self.quality_memory_limit) <= 0:
            raise ValueError(
                f"quality_memory_limit must be above 0 bytes, got {self.quality_memory_limit}"
            )
        if self.json_max_depth < 1:
            raise ValueError(f"json_max_depth must be at least 1, got {self.json_max_depth}")

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
