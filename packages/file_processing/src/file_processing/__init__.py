"""file_processing: the inbound-files runtime (unpack, decrypt, quality, quarantine)."""

from typing import Any

from etl_core import package_version
from file_processing.checks import expression_problems
from file_processing.decrypt import Decryptor, DecryptResult
from file_processing.delivery import Encryption, open_delivery, plaintext_name
from file_processing.errors import FileProcessingError, GpgError, QualityEngineError, RefusedError
from file_processing.ledger import Ledger, LedgerConflictError, ObjectRecord
from file_processing.limits import UnpackLimits
from file_processing.process import Outcome, Processor
from file_processing.quality import QualityResult, QualitySettings, analyze_file, validate_file
from file_processing.quarantine import QuarantineRecord, list_quarantined, read_record, release
from file_processing.reasons import Reason, describe
from file_processing.report import QualityReport
from file_processing.scan import ScanSummary, scan
from file_processing.settings import FileProcessingSettings
from file_processing.sniff import Kind, is_pgp, sniff
from file_processing.unpack import DEFAULT_LIMITS, Member, Packing, unpack


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on demand: importlib.metadata is slow to import
        return package_version("etl-file-processing")
    raise AttributeError(f"module 'file_processing' has no attribute {name!r}")


__all__ = [
    "DEFAULT_LIMITS",
    "DecryptResult",
    "Decryptor",
    "Encryption",
    "FileProcessingError",
    "FileProcessingSettings",
    "GpgError",
    "Kind",
    "Ledger",
    "LedgerConflictError",
    "Member",
    "ObjectRecord",
    "Outcome",
    "Packing",
    "Processor",
    "QualityEngineError",
    "QualityReport",
    "QualityResult",
    "QualitySettings",
    "QuarantineRecord",
    "Reason",
    "RefusedError",
    "ScanSummary",
    "UnpackLimits",
    "__version__",
    "analyze_file",
    "describe",
    "expression_problems",
    "is_pgp",
    "list_quarantined",
    "open_delivery",
    "plaintext_name",
    "read_record",
    "release",
    "scan",
    "sniff",
    "unpack",
    "validate_file",
]
