"""file_processing: the inbound-files runtime (unpack, decrypt, quality, quarantine)."""

from typing import TYPE_CHECKING

from etl_core import package_version
from etl_core.exports import lazy_exports

# eager: a lazy name would lose to the submodule of its name
from file_processing.scan import ScanSummary, scan
from file_processing.sniff import Kind, is_pgp, sniff
from file_processing.unpack import DEFAULT_LIMITS, Member, Packing, unpack

if TYPE_CHECKING:
    from file_processing.checks import expression_problems
    from file_processing.decrypt import Decryptor, DecryptResult
    from file_processing.delivery import Encryption, open_delivery, plaintext_name
    from file_processing.errors import (
        FileProcessingError,
        GpgError,
        QualityEngineError,
        RefusedError,
    )
    from file_processing.ledger import Ledger, LedgerConflictError, ObjectRecord
    from file_processing.limits import UnpackLimits
    from file_processing.outcome import Outcome
    from file_processing.process import Processor
    from file_processing.quality import QualityResult, QualitySettings, analyze_file, validate_file
    from file_processing.quarantine import QuarantineRecord, list_quarantined, read_record, release
    from file_processing.reasons import Reason, describe
    from file_processing.report import QualityReport
    from file_processing.settings import FileProcessingSettings

_EXPORTS = {
    "analyze_file": "file_processing.quality",
    "Decryptor": "file_processing.decrypt",
    "DecryptResult": "file_processing.decrypt",
    "describe": "file_processing.reasons",
    "Encryption": "file_processing.delivery",
    "expression_problems": "file_processing.checks",
    "FileProcessingError": "file_processing.errors",
    "FileProcessingSettings": "file_processing.settings",
    "GpgError": "file_processing.errors",
    "Ledger": "file_processing.ledger",
    "LedgerConflictError": "file_processing.ledger",
    "list_quarantined": "file_processing.quarantine",
    "ObjectRecord": "file_processing.ledger",
    "open_delivery": "file_processing.delivery",
    "Outcome": "file_processing.outcome",
    "plaintext_name": "file_processing.delivery",
    "Processor": "file_processing.process",
    "QualityEngineError": "file_processing.errors",
    "QualityReport": "file_processing.report",
    "QualityResult": "file_processing.quality",
    "QualitySettings": "file_processing.quality",
    "QuarantineRecord": "file_processing.quarantine",
    "read_record": "file_processing.quarantine",
    "Reason": "file_processing.reasons",
    "RefusedError": "file_processing.errors",
    "release": "file_processing.quarantine",
    "UnpackLimits": "file_processing.limits",
    "validate_file": "file_processing.quality",
}
"""Each re-exported name and its module, imported on first use (issue 16, start-up)."""


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, {"__version__": lambda: package_version("etl-file-processing")}
)

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
