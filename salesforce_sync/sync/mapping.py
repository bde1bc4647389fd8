"""Raw Salesforce chunks -> audience-store chunks, converted per column with pandas.

A raw chunk has one column per SELECT path (`Id`, `Email`, `Lead.HasOptedOutOfEmail`, ...) holding
None or text in Bulk-CSV form: booleans `true`/`false`, numbers as decimal text, datetimes
`2024-01-02T03:04:05.000Z` or `...000+0000`, dates `2024-01-02`, multipicklists `a;b`; an empty
string is null. Everything is converted a column at a time, `properties` too: each property becomes a
column of JSON values, and each row's document is one template filled with its row of them.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from salesforce_sync.config.models import PERSON_OBJECTS, STORE_COLUMN_TYPES, FieldMapping, PropertyType, SyncRules
from salesforce_sync.sync.errors import MappingError
from salesforce_sync.sync.external_ids import external_ids

#: Columns of a store chunk, in order: what map_chunk builds and the store's upserts take (store/chunks.py).
KEY_TEXT_COLUMNS = ("external_id", "salesforce_id", "object_type")
CONTACT_TEXT_COLUMNS = ("email", "first_name", "last_name", "phone")
STORE_CHUNK_COLUMNS: tuple[str, ...] = (*KEY_TEXT_COLUMNS, *CONTACT_TEXT_COLUMNS, "properties", "unsubscribed",
                                        "deleted", "sf_modified_at")


@dataclass(frozen=True)
class MappingWarning:
    """A value dropped (stored as null) because it does not fit its property's type."""

    salesforce_id: str
    field: str
    property: str
    value: str
    expected: PropertyType

    def __str__(self) -> str:
        return (f"record {self.salesforce_id}: {self.field} value {self.value!r} is not a valid "
                f"{self.expected} for property '{self.property}'; stored as null")


class MappedChunk(NamedTuple):
    """A store chunk and the values dropped from it; unpacks as `frame, warnings`."""

    frame: pd.DataFrame
    warnings: list[MappingWarning]


def map_chunk(
    raw: pd.DataFrame,
    *,
    integration_id: str,
    object_type: str,
    mappings: Sequence[FieldMapping],
) -> MappedChunk:
    """Convert a raw chunk into a store chunk (see STORE_CHUNK_COLUMNS) plus warnings for dropped values.

    Store columns email/first_name/last_name/phone/unsubscribed come from a person object's mappings
    targeting them (None when unmapped, and always for other objects); every other mapping lands in the
    row's `properties`, nulls included so a value cleared in Salesforce is cleared in the store too;
    `properties` holds each row's compact JSON document, as the store keeps it. `sf_modified_at` is
    LastModifiedDate as a UTC timestamp (microsecond resolution).
    """
    columns = _Columns(raw.reset_index(drop=True), integration_id, object_type)
    ids = columns.text("Id")
    if ids.isna().any():
        raise MappingError(f"{columns.where}: {int(ids.isna().sum())} record(s) have no Id")
    deleted = pd.Series(_lowered(columns.text("IsDeleted")) == "true", dtype=bool)
    modified_text = columns.text("LastModifiedDate")
    # A fixed resolution, so chunks concatenate and compare without pandas' inferred units differing.
    modified = pd.to_datetime(modified_text, format="ISO8601", utc=True, errors="coerce").dt.as_unit("us")
    if modified.isna().any():
        position = int(np.flatnonzero(modified.isna().to_numpy())[0])
        raise MappingError(f"{columns.where}: record {ids.iat[position]}: LastModifiedDate "
                           f"{modified_text.iat[position]!r} is not a datetime")

    count = len(ids)
    store: dict[str, pd.Series] = {name: _nulls(count) for name in STORE_COLUMN_TYPES}
    properties: dict[str, list[str]] = {}
    warnings: list[MappingWarning] = []
    person_columns = STORE_COLUMN_TYPES if object_type in PERSON_OBJECTS else {}
    for mapping in mappings:
        sources = [columns.text(path) for path in mapping.fields]
        text = _first_present(sources)
        # Converted and encoded once per distinct value (picklists, flags, dates and scores repeat a lot).
        codes, uniques = pd.factorize(text)  # null: code -1, which picks the None/"null" appended last
        values, invalid = _CONVERTERS[mapping.type](pd.Series(uniques, dtype=object))
        for position in np.flatnonzero(np.append(invalid, False)[codes]):
            field = next(path for path, source in zip(mapping.fields, sources) if source.iat[position] is not None)
            warnings.append(MappingWarning(ids.iat[position], field, mapping.property, text.iat[position], mapping.type))
        if mapping.property in person_columns:
            store[mapping.property] = pd.Series(_with_null(values.tolist(), None)[codes], dtype=object)
        else:
            properties[mapping.property] = _with_null(_JSON_VALUES[mapping.type](values), "null")[codes].tolist()

    frame = pd.DataFrame({
        "external_id": external_ids(integration_id, object_type, ids),
        "salesforce_id": ids,
        "object_type": pd.Series([object_type] * count, dtype=object),
        **{name: store[name] for name in ("email", "first_name", "last_name", "phone")},
        "properties": pd.Series(_documents(properties, count), dtype=object),
        "unsubscribed": store["unsubscribed"],
        "deleted": deleted,
        "sf_modified_at": modified,
    }, columns=list(STORE_CHUNK_COLUMNS))
    return MappedChunk(frame, warnings)


def settings_fingerprint(mappings: Sequence[FieldMapping], sync_rules: SyncRules | None, cursor_field: str) -> str:
    """A hash of what decides an object's stored rows: its effective mappings, sync rules and cursor.

    Stored after each complete read; when it changes, the object is re-read in full so every stored row
    gets the new mapped content and scope (an incremental window only reaches records modified in it)."""
    settings = {
        "mappings": [mapping.model_dump(mode="json", by_alias=True) for mapping in mappings],
        "rules": None if sync_rules is None or not sync_rules.rules else sync_rules.model_dump(mode="json"),
        "cursor": cursor_field,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class _Columns:
    """Raw columns by SELECT path (case-insensitive), as object Series with None for null or ''."""

    def __init__(self, raw: pd.DataFrame, integration_id: str, object_type: str) -> None:
        self.raw = raw
        self.where = f"integration '{integration_id}', {object_type}"
        self.by_lower = {str(name).lower(): name for name in raw.columns}

    def text(self, path: str) -> pd.Series:
        name = self.by_lower.get(path.lower())
        if name is None:
            raise MappingError(f"{self.where}: the raw chunk has no column '{path}'; select it (see select_fields)")
        values = self.raw[name].to_numpy(dtype=object)
        empty = pd.isna(values) | (values == "")
        if empty.any():
            values = values.copy()
            values[empty] = None
        return pd.Series(values, dtype=object)


def _with_null(values: list, null: object) -> np.ndarray:
    """Values as an object array with `null` appended, so factorize codes (-1 for null) index it directly."""
    array = np.empty(len(values) + 1, dtype=object)
    array[:-1] = values
    array[-1] = null
    return array


def _nulls(count: int) -> pd.Series:
    return pd.Series([None] * count, dtype=object)


def _first_present(sources: list[pd.Series]) -> pd.Series:
    result = sources[0]
    for source in sources[1:]:
        result = result.where(result.notna(), source)
    return result


Converted = tuple[pd.Series, np.ndarray]


def _as_string(text: pd.Series) -> Converted:
    return text, np.zeros(len(text), dtype=bool)


def _as_number(text: pd.Series) -> Converted:
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    valid = np.isfinite(numbers.to_numpy())
    return numbers.astype(object).where(valid, None), text.notna().to_numpy() & ~valid


def _lowered(text: pd.Series) -> np.ndarray:
    """Lower-cased values (None stays None), computed once per distinct value: flags repeat a lot."""
    codes, uniques = pd.factorize(text)
    lowered = np.array([str(value).lower() for value in uniques] + [None], dtype=object)
    return lowered[codes]  # code -1 (null) picks the trailing None


def _as_boolean(text: pd.Series) -> Converted:
    lowered = _lowered(text)
    true, false = lowered == "true", lowered == "false"
    values = np.full(len(text), None, dtype=object)
    values[true] = True
    values[false] = False
    return pd.Series(values, dtype=object), text.notna().to_numpy() & ~(true | false)


def _as_date(text: pd.Series) -> Converted:
    """ISO text: dates stay `2024-01-02`, datetimes become UTC `2024-01-02T03:04:05.000Z`."""
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    valid = parsed.notna().to_numpy()
    utc_millis = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    iso = np.datetime_as_string(utc_millis, unit="ms", timezone="UTC").astype(object)
    date_only = text.str.len().eq(10).to_numpy()
    iso[date_only] = text.to_numpy(dtype=object)[date_only]
    iso[~valid] = None
    return pd.Series(iso, dtype=object), text.notna().to_numpy() & ~valid


def _as_array(text: pd.Series) -> Converted:
    """A multipicklist stays its `a;b` text here; it becomes a JSON list in _json_lists."""
    return text, np.zeros(len(text), dtype=bool)


_CONVERTERS: dict[str, Callable[[pd.Series], Converted]] = {
    "string": _as_string, "number": _as_number, "boolean": _as_boolean, "date": _as_date, "array": _as_array,
}


def _json_strings(values: pd.Series) -> list[str]:
    return ["null" if value is None else encode_basestring(value) for value in values.tolist()]


def _json_numbers(values: pd.Series) -> list[str]:
    """Finite floats as json writes them (float.__repr__)."""
    return ["null" if value is None else float.__repr__(value) for value in values.tolist()]


def _json_booleans(values: pd.Series) -> list[str]:
    return ["null" if value is None else ("true" if value else "false") for value in values.tolist()]


def _json_lists(text: pd.Series) -> list[str]:
    """`a;b` as ["a","b"]: JSON never escapes ';', so splitting the encoded string is splitting the list."""
    return ["null" if value is None else "[" + encode_basestring(value).replace(";", '","') + "]"
            for value in text.tolist()]


_JSON_VALUES: dict[str, Callable[[pd.Series], list[str]]] = {
    "string": _json_strings, "number": _json_numbers, "boolean": _json_booleans, "date": _json_strings,
    "array": _json_lists,
}


def _documents(properties: dict[str, list[str]], count: int) -> list[str]:
    """Each row's compact JSON object (keys in mapping order), as json.dumps writes it with ensure_ascii=False
    and separators (",", ":"): one template, filled once per row with the row's JSON values."""
    if not properties:
        return ["{}"] * count
    template = "{" + ",".join(encode_basestring(name).replace("%", "%%") + ":%s" for name in properties) + "}"
    return [template % row for row in zip(*properties.values())]
