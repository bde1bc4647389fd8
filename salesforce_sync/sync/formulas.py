"""Formula freshness (pure): which mapped fields change while the record's own LastModifiedDate stays, the query
that re-reads them, and which stored rows that re-read changes.

Salesforce computes a formula field (describe `calculated: true`) when it is read, and a relationship path
(`Account.Name`, `Account.Owner.Name`) reads another record: when their inputs change, the record's stamps do
not move, so no incremental window (and no change event) sees it. A window does select the records whose first
parent changed (see `runs.window.related_parents`), but not a grandparent's change nor a parent's own formula.
"""

from __future__ import annotations

import json

from collections.abc import Sequence
from typing import Any

import pandas as pd

from salesforce_sync.config.models import STORE_COLUMN_TYPES, FieldMapping, ObjectType, PropertyType
from salesforce_sync.sync.describe import Describes, field_infos
from salesforce_sync.sync.mapping import STORE_CHUNK_COLUMNS
from salesforce_sync.sync.soql import build_count_soql, build_window_soql, select_fields


def refreshed_mappings(object_type: str, mappings: Sequence[FieldMapping],
                       describes: Describes) -> tuple[FieldMapping, ...]:
    """The mappings that read a formula field or go through a relationship, in mapping order."""
    infos = field_infos(object_type, [path for mapping in mappings for path in mapping.fields], describes)

    def moves_alone(path: str) -> bool:
        return "." in path or (path in infos and infos[path].calculated)

    return tuple(mapping for mapping in mappings if any(moves_alone(path) for path in mapping.fields))


def refresh_query(object_type: ObjectType, refreshed: Sequence[FieldMapping], rules_where: str | None,
                  cursor_field: str = "LastModifiedDate") -> tuple[tuple[str, ...], str, str]:
    """(SELECT list, query, COUNT() query) of a re-read of the refreshed fields of every record the sync rules
    select: Id, the stamps `map_chunk` reads, and the refreshed mappings' paths."""
    fields = select_fields(object_type, refreshed, cursor_field)
    return (fields, build_window_soql(object_type, fields, rules_where, None, None),
            build_count_soql(object_type, rules_where, None, None))


def changed_rows(fresh: pd.DataFrame, stored: pd.DataFrame, mappings: Sequence[FieldMapping],
                 refreshed: Sequence[FieldMapping]) -> pd.DataFrame:
    """The stored rows a re-read changes, as a store chunk with their stored version (`sf_modified_at`).

    `fresh` is `map_chunk` of the re-read with the `refreshed` mappings (properties as JSON text); `stored` the
    live stored rows (store chunk columns, properties as dicts). Each row keeps its stored values except the refreshed ones, and its
    properties are rebuilt in the order of `mappings`, as a window writes them, so the store's content hash is
    the one a later window of the unchanged record computes. Rows not stored live are left out."""
    names = {mapping.property for mapping in refreshed}
    incoming = fresh.drop_duplicates("external_id").set_index("external_id")
    rows = stored[stored["external_id"].isin(incoming.index)].reset_index(drop=True)
    if rows.empty:
        return rows.reindex(columns=list(STORE_CHUNK_COLUMNS))
    incoming = incoming.loc[rows["external_id"]].reset_index(drop=True)
    changed = pd.Series(False, index=rows.index)
    updated = rows.copy()
    for column in STORE_COLUMN_TYPES:
        if column in names:
            before, after = _nullable(rows[column]), _nullable(incoming[column])
            changed |= pd.Series([b != a for b, a in zip(before, after)], index=rows.index)
            updated[column] = incoming[column].astype(rows[column].dtype)
    types = {m.property: m.type for m in mappings if m.property not in STORE_COLUMN_TYPES}
    properties = []
    for position, (kept, document) in enumerate(zip(rows["properties"].tolist(), incoming["properties"].tolist())):
        kept, read = kept or {}, json.loads(document)  # map_chunk hands each row's properties as its JSON text
        rebuilt = {name: read.get(name) if name in names else _as_mapped(kept.get(name), kind)
                   for name, kind in types.items()}
        properties.append(rebuilt)
        if rebuilt != {name: _as_mapped(value, types.get(name)) for name, value in kept.items()}:
            changed.iat[position] = True
    updated["properties"] = pd.Series(properties, index=rows.index, dtype=object)
    return updated[changed.to_numpy()].reset_index(drop=True)[list(STORE_CHUNK_COLUMNS)]


def _nullable(column: pd.Series) -> list[Any]:
    return [None if pd.isna(value) else value for value in column.astype(object).tolist()]


def _as_mapped(value: Any, kind: PropertyType | None) -> Any:
    """A stored property value as `map_chunk` makes it: numbers are floats (PostgreSQL's jsonb gives a whole
    number such as 1e+20 back as an int)."""
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
