"""Observability's settings: the platform's, plus the status service's address and pace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from etl_core.runtime import RuntimeSettings
from etl_core.secrets import Secret
from etl_core.setting_checks import SettingChecks

__all__ = ["ObservabilitySettings"]


@dataclass(frozen=True)
class ObservabilitySettings(RuntimeSettings):
    """Settings of ``etl-observability`` (flag > ``ETL_*`` > ``etl.toml`` > default)."""

    serve_host: str = "127.0.0.1"
    """Where ``serve`` listens; ``0.0.0.0`` to be reached from other hosts (a container)."""
    serve_port: int = 9108
    """The port ``serve`` listens on."""
    evaluation_interval: timedelta = timedelta(seconds=60)
    """How often ``serve`` evaluates the monitors and takes the storage inventory."""
    schedule_check_interval: timedelta = timedelta(minutes=5)
    """How often ``schedule`` runs ``check`` on the workers (history and alerts included)."""
    database_window: timedelta = timedelta(hours=24)
    """How far back the database metrics' run success rates and durations look."""
    long_query_after: timedelta = timedelta(minutes=5)
    """A database query running longer than this counts as long-running."""
    alert_slack_webhooks: tuple[Secret, ...] = ()
    """Slack-compatible incoming webhooks alerts are posted to (``env:NAME`` / ``file:/path``)."""
    alert_webhooks: tuple[Secret, ...] = ()
    """Generic webhooks alerts are posted to as JSON (``env:NAME`` / ``file:/path``)."""
    alert_reminder_interval: timedelta = timedelta(hours=4)
    """How often an open alert is told again (0: never, else a minute or more);
    acknowledged ones are not."""
    alert_delivery_deadline: timedelta = timedelta(minutes=5)
    """How long a failing delivery is retried (with backoff); ``check`` waits at most this.
    Longer than 0s: with none, every notification would be given up unsent."""
    storage_recent_days: int = 2
    """Partition dates listed every cycle for the storage metrics: today and the days before
    it (2: yesterday too), plus tomorrow; older partitions are counted by the reconcile."""
    storage_reconcile_interval: timedelta = timedelta(hours=1)
    """How often ``serve`` and ``inventory`` list the whole store again (what the recent
    listing cannot see)."""
    storage_list_workers: int = 8
    """Listings the storage metrics run at once (prefixes in parallel)."""

    def _check(self, checks: SettingChecks) -> None:
        """The lane's own: its intervals and deadline, the address and the storage listings."""
        super()._check(checks)
        for name in (
            "schedule_check_interval",
            "evaluation_interval",
            "database_window",
            "alert_delivery_deadline",
            "storage_reconcile_interval",
        ):
            checks.positive_interval(name)
        # a bare number is seconds: "4" meant four hours, and reminding every open alert at
        # every cycle floods the channel until someone mutes it, the next alert with it
        reminder = self.alert_reminder_interval
        checks.require(
            reminder == timedelta(0) or reminder >= timedelta(minutes=1),
            "alert_reminder_interval",
            "0 (no reminders) or a minute or more (a bare number is seconds: '4h' for hours)",
        )
        checks.require(0 <= self.serve_port <= 65535, "serve_port", "from 0 to 65535")
        checks.listen_host("serve_host")
        checks.require(1 <= self.storage_recent_days <= 366, "storage_recent_days", "from 1 to 366")
        checks.require(1 <= self.storage_list_workers <= 64, "storage_list_workers", "from 1 to 64")
