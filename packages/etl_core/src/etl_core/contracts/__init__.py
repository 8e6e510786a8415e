"""Dataset contracts and API sources: one typed model, one loader, for every lane.

Load a config directory once, at start-up, with the lane's engine-backed rules::

    contracts = load_contracts(config_dir, validators=[check_expressions])
    matched = contracts.match("landing/pos/pos_20261101.csv")

``docs/contracts.md`` is the reference of the format.
"""

from typing import TYPE_CHECKING

from etl_core.exports import lazy_exports

if TYPE_CHECKING:
    from etl_core.contracts.cursors import (
        CursorValue,
        CursorValueError,
        format_cursor,
        parse_cursor,
        shift_cursor,
    )
    from etl_core.contracts.days import parse_day
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
        CHECK_KINDS,
        COLUMN_TYPES,
        COLUMNLESS_CHECK_KINDS,
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

_EXPORTS = {
    "CursorValue": "etl_core.contracts.cursors",
    "CursorValueError": "etl_core.contracts.cursors",
    "format_cursor": "etl_core.contracts.cursors",
    "parse_cursor": "etl_core.contracts.cursors",
    "parse_day": "etl_core.contracts.days",
    "shift_cursor": "etl_core.contracts.cursors",
    "Holidays": "etl_core.contracts.freshness",
    "Percent": "etl_core.contracts.freshness",
    "VolumeBaseline": "etl_core.contracts.freshness",
    "ContractCheck": "etl_core.contracts.load",
    "DATASETS_DIR": "etl_core.contracts.load",
    "check_contracts": "etl_core.contracts.load",
    "error_location": "etl_core.contracts.load",
    "load_contract": "etl_core.contracts.load",
    "load_contracts": "etl_core.contracts.load",
    "CHECK_KINDS": "etl_core.contracts.model",
    "COLUMNLESS_CHECK_KINDS": "etl_core.contracts.model",
    "COLUMN_TYPES": "etl_core.contracts.model",
    "Check": "etl_core.contracts.model",
    "Column": "etl_core.contracts.model",
    "ColumnMap": "etl_core.contracts.model",
    "Contract": "etl_core.contracts.model",
    "ContractError": "etl_core.contracts.model",
    "ContractSet": "etl_core.contracts.model",
    "Control": "etl_core.contracts.model",
    "Enrichment": "etl_core.contracts.model",
    "Freshness": "etl_core.contracts.model",
    "Load": "etl_core.contracts.model",
    "Output": "etl_core.contracts.model",
    "ParseOptions": "etl_core.contracts.model",
    "RejectLimit": "etl_core.contracts.model",
    "SchemaPolicy": "etl_core.contracts.model",
    "Transform": "etl_core.contracts.model",
    "DATE_SOURCES": "etl_core.contracts.patterns",
    "FilePattern": "etl_core.contracts.patterns",
    "PatternError": "etl_core.contracts.patterns",
    "time_zone": "etl_core.contracts.patterns",
    "AUTH_TYPES": "etl_core.contracts.sources",
    "Auth": "etl_core.contracts.sources",
    "CURSOR_TYPES": "etl_core.contracts.sources",
    "Endpoint": "etl_core.contracts.sources",
    "Incremental": "etl_core.contracts.sources",
    "PAGINATION_TYPES": "etl_core.contracts.sources",
    "PROVENANCE_FIELDS": "etl_core.contracts.sources",
    "Pagination": "etl_core.contracts.sources",
    "RateLimit": "etl_core.contracts.sources",
    "SOURCES_DIR": "etl_core.contracts.sources",
    "Source": "etl_core.contracts.sources",
    "SourceSet": "etl_core.contracts.sources",
    "load_source": "etl_core.contracts.sources",
    "load_sources": "etl_core.contracts.sources",
    "path_fields": "etl_core.contracts.sources",
    "ContractValidator": "etl_core.contracts.validate",
    "literal_problem": "etl_core.contracts.validate",
}
"""Each re-exported name and its module, imported on first use: a lane that reads dataset
contracts does not load the API sources' model (issue 16, start-up)."""

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, {})

__all__ = [
    "AUTH_TYPES",
    "CHECK_KINDS",
    "COLUMNLESS_CHECK_KINDS",
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
    "parse_day",
    "path_fields",
    "shift_cursor",
    "time_zone",
]
