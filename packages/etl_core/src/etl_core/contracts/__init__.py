"""Dataset contracts: one typed model, one loader, for every lane.

Load a config directory once, at start-up, with the lane's engine-backed rules::

    contracts = load_contracts(config_dir, validators=[check_expressions])
    matched = contracts.match("landing/pos/pos_20261101.csv")

``docs/contracts.md`` is the reference of the format.
"""

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
from etl_core.contracts.validate import ContractValidator, literal_problem

__all__ = [
    "COLUMN_TYPES",
    "DATASETS_DIR",
    "DATE_SOURCES",
    "Check",
    "Column",
    "ColumnMap",
    "Contract",
    "ContractCheck",
    "ContractError",
    "ContractSet",
    "ContractValidator",
    "Control",
    "Enrichment",
    "FilePattern",
    "Freshness",
    "Holidays",
    "Load",
    "Output",
    "ParseOptions",
    "PatternError",
    "Percent",
    "RejectLimit",
    "SchemaPolicy",
    "Transform",
    "VolumeBaseline",
    "check_contracts",
    "error_location",
    "literal_problem",
    "load_contract",
    "load_contracts",
    "time_zone",
]
