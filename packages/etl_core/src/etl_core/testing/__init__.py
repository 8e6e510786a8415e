"""Test helpers every package uses the same way.

``capture_logs()`` and ``capture_metrics()`` collect what code under test logs
and measures; ``s3_server()`` starts moto's S3 server on 127.0.0.1 (needs the
``moto[server]`` dev dependency); ``publish_delivery()`` writes validated files
with their delivery manifest, as file_processing does; ``plant_object()`` puts
an object under a key the platform refuses (``a//b``), as a vendor's tool could;
``small_disk()`` mounts a small tmpfs (root only, else the test is skipped);
``service_unavailable()`` applies the suite's rule for absent services (skip locally, fail under
``ETL_REQUIRE_SERVICES=1``).
Nothing here is imported by the platform itself.
"""

from etl_core.testing.deliveries import delivered_keys, publish_delivery
from etl_core.testing.disks import small_disk
from etl_core.testing.hostile import local_store_can_hold, plant_object
from etl_core.testing.logs import capture_logs
from etl_core.testing.metrics import CapturedMetrics, capture_metrics
from etl_core.testing.s3 import aws_test_environment, create_bucket, s3_server
from etl_core.testing.services import port_open, service_unavailable, services_required

__all__ = [
    "CapturedMetrics",
    "aws_test_environment",
    "capture_logs",
    "capture_metrics",
    "create_bucket",
    "delivered_keys",
    "local_store_can_hold",
    "plant_object",
    "port_open",
    "publish_delivery",
    "s3_server",
    "service_unavailable",
    "services_required",
    "small_disk",
]
