"""file_processing: the inbound-files runtime (unpack, decrypt, quality, quarantine)."""

from importlib.metadata import PackageNotFoundError, version

from file_processing.decrypt import Decryptor, DecryptResult
from file_processing.delivery import Encryption, open_delivery, plaintext_name
from file_processing.errors import FileProcessingError, GpgError, RefusedError
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason, describe
from file_processing.sniff import Kind, is_pgp, sniff
from file_processing.unpack import DEFAULT_LIMITS, Member, Packing, unpack

try:
    __version__ = version("etl-file-processing")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_LIMITS",
    "DecryptResult",
    "Decryptor",
    "Encryption",
    "FileProcessingError",
    "GpgError",
    "Kind",
    "Member",
    "Packing",
    "Reason",
    "RefusedError",
    "UnpackLimits",
    "__version__",
    "describe",
    "is_pgp",
    "open_delivery",
    "plaintext_name",
    "sniff",
    "unpack",
]
