"""Dataset contracts and API sources: one typed model, one loader, for every lane.

Load a config directory once, at start-up, with the lane's engine-backed rules::

    contracts = load_contracts(config_dir, validators=[check_expressions])
    matched = contracts.match("landing/pos/pos_20261101.csv")

``docs/contracts.md`` is the reference of the format.
"""

from etl_core.contracts.cursors import (
    CursorValue,
    CursorValueError,
    format_cursor,
    parse_cursor,
    shift_cursor,
)
from etl_core.contracts.freshness import Holidays, Percent, VolumeBaseline
from etl_core.contracts.load import (
    DATASETS_DIR,
    ContractCheck,
    check_contracts,
    error_location,
    load_contract,
    load_contracts,
)
from etl_core.contracts.model import (
    COLUMN_TYPES,
    Check,
    Column,
    ColumnMap,
    Contract,
    ContractError,
    ContractSet,
    Control,
    Enrichment,
    Freshness,
    Load,
    Output,
    ParseOptions,
    RejectLimit,
    SchemaPolicy,
    Transform,
)
from etl_core.contracts.patterns import DATE_SOURCES, FilePattern, PatternError, time_zone
from etl_core.contracts.sources import (
    AUTH_TYPES,
    CURSOR_TYPES,
    PAGINATION_TYPES,
    PROVENANCE_FIELDS,
    SOURCES_DIR,
    Auth,
    Endpoint,
    Incremental,
    Pagination,
    RateLimit,
    Source,
    SourceSet,
    load_source,
    load_sources,
    path_fields,
)
from etl_core.contracts.validate import ContractValidator, literal_problem

__all__ = [
    "AUTH_TYPES",
    "COLUMN_TYPES",
    "CURSOR_TYPES",
    "DATASETS_DIR",
    "DATE_SOURCES",
    "PAGINATION_TYPES",
    "PROVENANCE_FIELDS",
    "SOURCES_DIR",
    "Auth",
    "Check",
    "Column",
    "ColumnMap",
    "Contract",
    "ContractCheck",
    "ContractError",
    "ContractSet",
    "ContractValidator",
    "Control",
    "CursorValue",
    "CursorValueError",
    "Endpoint",
    "Enrichment",
    "FilePattern",
    "Freshness",
    "Holidays",
    "Incremental",
    "Load",
    "Output",
    "Pagination",
    "ParseOptions",
    "PatternError",
    "Percent",
    "RateLimit",
    "RejectLimit",
    "SchemaPolicy",
    "Source",
    "SourceSet",
    "Transform",
    "VolumeBaseline",
    "check_contracts",
    "error_location",
    "format_cursor",
    "literal_problem",
    "load_contract",
    "load_contracts",
    "load_source",
    "load_sources",
    "parse_cursor",
    "path_fields",
    "shift_cursor",
    "time_zone",
]
