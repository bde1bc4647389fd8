"""Pure sync logic (no I/O): sync rules as SOQL, window bounds, field mapping and typing, external ids."""

from salesforce_sync.sync.describe import (
    FieldInfo,
    MappingProblem,
    field_infos,
    field_types,
    label_from_api_name,
    objects_to_describe,
    validate_mappings,
)
from salesforce_sync.sync.errors import MappingError, SyncRuleError
from salesforce_sync.sync.external_ids import external_id, external_id_prefix, external_ids
from salesforce_sync.sync.field_types import natural_property_type, salesforce_type_fits
from salesforce_sync.sync.mapping import STORE_CHUNK_COLUMNS, MappedChunk, MappingWarning, map_chunk
from salesforce_sync.sync.soql import (
    build_count_soql,
    build_window_soql,
    rules_to_where,
    select_fields,
    soql_datetime,
    soql_like_pattern,
    soql_string,
)
from salesforce_sync.sync.windows import fetch_bounds

__all__ = [
    "STORE_CHUNK_COLUMNS", "FieldInfo", "MappedChunk", "MappingError", "MappingProblem", "MappingWarning",
    "SyncRuleError", "build_count_soql", "build_window_soql", "external_id", "external_id_prefix",
    "external_ids", "fetch_bounds", "field_infos", "field_types", "label_from_api_name", "map_chunk",
    "natural_property_type", "objects_to_describe", "rules_to_where", "salesforce_type_fits",
    "select_fields", "soql_datetime", "soql_like_pattern", "soql_string", "validate_mappings",
]
