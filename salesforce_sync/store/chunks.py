"""Check and normalise a chunk of synced records before it reaches the database (pure, no I/O).

Both backends load the same normalised frame, so validation and the "newest version wins" rule for
duplicate keys live here once.
"""

from __future__ import annotations

import json
import json.encoder
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from salesforce_sync.store.errors import StoreInputError
from salesforce_sync.sync.mapping import CONTACT_TEXT_COLUMNS as _CONTACT_TEXT_COLUMNS
from salesforce_sync.sync.mapping import KEY_TEXT_COLUMNS as _KEY_TEXT_COLUMNS
from salesforce_sync.sync.mapping import STORE_CHUNK_COLUMNS as CHUNK_COLUMNS

TEXT_CHUNK_COLUMNS = (*_KEY_TEXT_COLUMNS, *_CONTACT_TEXT_COLUMNS, "properties")
"""The chunk's columns that travel as text (properties as JSON text), in chunk order; the chunk itself is what
sync.mapping's map_chunk builds (CHUNK_COLUMNS)."""
_PREPARED_ORDER = (*_KEY_TEXT_COLUMNS, *_CONTACT_TEXT_COLUMNS, "unsubscribed", "deleted", "sf_modified_at", "properties")
"""PreparedChunk.rows' columns (then content_hash), whichever way the chunk was prepared."""
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
"""NUL as JSON spells it: \\u0000 after an even number of backslashes (after an odd number it is literal text)."""


@dataclass(frozen=True)
class PreparedChunk:
    """A validated chunk: one row per external_id (its newest version), in store-ready form, plus each
    row's content_hash (int64).

    Text columns hold str or None (Salesforce has no empty strings: "" becomes None), properties holds
    compact JSON text, unsubscribed is pandas "boolean", deleted is bool, sf_modified_at is
    datetime64[us, UTC].
    """

    rows: pd.DataFrame
    duplicates_dropped: int

    def __len__(self) -> int:
        """The records the chunk came with, duplicates included."""
        return len(self.rows) + self.duplicates_dropped


def external_ids(integration_id: str, object_types: pd.Series, salesforce_ids: pd.Series) -> pd.Series:
    """Build audience keys, sf_<integrationId>_<objectType>_<salesforceId>, for whole columns at once."""
    return "sf_" + integration_id + "_" + object_types.astype(object) + "_" + salesforce_ids.astype(object)


def prepare_chunk(integration_id: str, chunk: pd.DataFrame) -> PreparedChunk:
    """Validate a chunk for integration_id and keep only the newest version of each key."""
    _check_columns(integration_id, chunk)
    chunk = chunk.reset_index(drop=True)
    rows = pd.DataFrame(index=chunk.index)
    for column in _KEY_TEXT_COLUMNS:
        rows[column] = _text_column(integration_id, chunk, column, required=True)
    for column in _CONTACT_TEXT_COLUMNS:
        rows[column] = _text_column(integration_id, chunk, column, required=False)
    rows["unsubscribed"] = _flag_column(integration_id, chunk, "unsubscribed", nullable=True)
    rows["deleted"] = _flag_column(integration_id, chunk, "deleted", nullable=False).astype(bool)
    rows["sf_modified_at"] = _timestamp_column(integration_id, chunk)
    _check_external_ids(integration_id, rows)
    rows["properties"] = pd.Series(_properties_json(integration_id, chunk), index=rows.index, dtype=object)
    return _hashed_newest(rows)


def store_ready_chunk(integration_id: str, rows: pd.DataFrame) -> PreparedChunk:
    """A chunk built in store-ready form where it was made (map_chunk's: see PreparedChunk, with properties
    as JSON text and unsubscribed as True/False/None), so it is not validated a second time: only NUL, which
    no backend may receive, is looked for, then rows are hashed and the newest version of each key kept."""
    rows = rows.reset_index(drop=True)
    for column in (*_KEY_TEXT_COLUMNS, *_CONTACT_TEXT_COLUMNS):
        _refuse_nul(integration_id, rows, column, rows[column].tolist())
    documents = rows["properties"].tolist()
    _refuse_json_nul(integration_id, rows, documents)
    ready = pd.DataFrame({column: rows[column] for column in _PREPARED_ORDER})
    ready["unsubscribed"] = ready["unsubscribed"].astype("boolean")
    return _hashed_newest(ready)


def _hashed_newest(rows: pd.DataFrame) -> PreparedChunk:
    rows["content_hash"] = content_hashes(rows)
    if rows["external_id"].duplicated().any():
        newest = rows.sort_values("sf_modified_at", kind="stable").drop_duplicates("external_id", keep="last")
        return PreparedChunk(rows=newest.reset_index(drop=True), duplicates_dropped=len(rows) - len(newest))
    return PreparedChunk(rows=rows, duplicates_dropped=0)


_HASHED_TEXT_COLUMNS = (*_CONTACT_TEXT_COLUMNS, "properties")
_NULL_HASH = np.uint64(np.iinfo(np.uint64).max)
_HASH_MULTIPLIER = np.uint64(1_000_003)


def content_hashes(rows: pd.DataFrame) -> pd.Series:
    """A 64-bit hash per row of everything stored from Salesforce besides the version: contact fields,
    properties (their JSON text, so a new or renamed property changes it), opt-out and the deleted flag.

    Computed a column at a time (pandas' SipHash with its fixed key, stable across processes; null
    hashed apart from any text), so the store can apply a same-version row whose content differs: a
    new mapping, a changed parent value.
    """
    combined = np.zeros(len(rows), dtype=np.uint64)
    for column in _HASHED_TEXT_COLUMNS:
        values = rows[column].to_numpy(dtype=object)
        hashed = pd.util.hash_array(values, categorize=False)
        hashed[pd.isna(values)] = _NULL_HASH
        combined = combined * _HASH_MULTIPLIER ^ hashed
    opt_out = rows["unsubscribed"].astype("Int8").fillna(-1).to_numpy(dtype=np.int64) + 1
    flags = opt_out * 2 + rows["deleted"].to_numpy(dtype=np.int64)  # 0..5: opt-out (null, false, true) x deleted
    combined = combined * _HASH_MULTIPLIER ^ pd.util.hash_array(flags)
    return pd.Series(combined.view(np.int64), index=rows.index)


def _check_columns(integration_id: str, chunk: pd.DataFrame) -> None:
    missing = [column for column in CHUNK_COLUMNS if column not in chunk.columns]
    unexpected = [str(column) for column in chunk.columns if column not in CHUNK_COLUMNS]
    if missing or unexpected:
        raise StoreInputError(
            f"integration {integration_id!r}: chunk columns do not match the audience store's "
            f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'}; expected: {list(CHUNK_COLUMNS)})"
        )
    repeated = sorted({str(column) for column in chunk.columns[chunk.columns.duplicated()]})
    if repeated:
        raise StoreInputError(f"integration {integration_id!r}: chunk has repeated columns {repeated}")


def _text_column(integration_id: str, chunk: pd.DataFrame, column: str, *, required: bool) -> pd.Series:
    values = chunk[column]
    present = values.notna()
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind not in ("string", "empty") and present.any():
        bad = ~values[present].map(lambda value: isinstance(value, str))
        position = bad[bad].index[0]
        raise _row_error(integration_id, chunk, position, column, f"must be text, got {_shown(values[position])}")
    as_objects = values.astype(object)
    text = as_objects.where(present & (as_objects != ""), None)
    if required and text.isna().any():
        position = text[text.isna()].index[0]
        raise _row_error(integration_id, chunk, position, column, "is required but empty")
    _refuse_nul(integration_id, chunk, column, text.tolist())
    return text


def _flag_column(integration_id: str, chunk: pd.DataFrame, column: str, *, nullable: bool) -> pd.Series:
    values = chunk[column]
    if values.dtype != bool and str(values.dtype) != "boolean":
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind not in ("boolean", "empty"):
            bad = ~values.map(lambda value: pd.isna(value) or isinstance(value, (bool, np.bool_)))
            position = bad[bad].index[0]
            raise _row_error(
                integration_id, chunk, position, column, f"must be true/false, got {_shown(values[position])}"
            )
    flags = values.astype("boolean")
    if not nullable and flags.isna().any():
        position = flags[flags.isna()].index[0]
        raise _row_error(integration_id, chunk, position, column, "is required but empty")
    return flags


def _timestamp_column(integration_id: str, chunk: pd.DataFrame) -> pd.Series:
    values = chunk["sf_modified_at"]
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise StoreInputError(
            f"integration {integration_id!r}: column 'sf_modified_at' must hold timezone-aware timestamps "
            f"(UTC LastModifiedDate), got dtype {values.dtype}"
        )
    missing = values.isna()
    if missing.any():
        raise _row_error(integration_id, chunk, missing[missing].index[0], "sf_modified_at", "is required but empty")
    return values.dt.tz_convert("UTC").dt.floor("us").astype("datetime64[us, UTC]")


def _check_external_ids(integration_id: str, rows: pd.DataFrame) -> None:
    """The key must embed this integration, the object and the Salesforce id, or syncs would collide."""
    expected = external_ids(integration_id, rows["object_type"], rows["salesforce_id"])
    wrong = rows["external_id"] != expected
    if wrong.any():
        position = wrong[wrong].index[0]
        raise StoreInputError(
            f"integration {integration_id!r}, object {rows.at[position, 'object_type']!r}: external_id "
            f"{rows.at[position, 'external_id']!r} should be {expected[position]!r}"
        )


def _refuse_nul(integration_id: str, chunk: pd.DataFrame, column: str, texts: list[str | None]) -> None:
    """PostgreSQL cannot store the NUL character; refuse it on every backend so both behave alike."""
    if "\x00" in "".join(filter(None, texts)):
        position = next(index for index, value in enumerate(texts) if value and "\x00" in value)
        raise _row_error(integration_id, chunk, position, column, "contains a NUL character, which cannot be stored")


def _properties_json(integration_id: str, chunk: pd.DataFrame) -> list[str]:
    values = chunk["properties"].tolist()
    documents: list[str] = []
    if all(type(properties) is dict or properties is None for properties in values):
        try:
            documents = ["{}" if properties is None else _encode_json(properties) for properties in values]
        except (TypeError, ValueError, RecursionError):
            documents = []  # the row-by-row pass below finds the culprit and names it
    if not documents:
        for position, properties in enumerate(values):
            try:
                documents.append(_properties_document(properties))
            except (TypeError, ValueError) as error:
                raise _row_error(integration_id, chunk, position, "properties", str(error)) from error
    _refuse_json_nul(integration_id, chunk, documents)
    return documents


def _refuse_json_nul(integration_id: str, chunk: pd.DataFrame, documents: list[str]) -> None:
    if "\\u0000" in "".join(documents):
        culprits = [index for index, document in enumerate(documents) if _JSON_NUL.search(document)]
        if culprits:
            raise _row_error(
                integration_id, chunk, culprits[0], "properties", "contains a NUL character, which cannot be stored"
            )


def _json_value(value: Any) -> Any:
    """Values json cannot encode by itself: dates become ISO strings, numpy and Decimal numbers plain numbers."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"property value {value!r} of type {type(value).__name__} cannot be stored as JSON")


def _compact_json_encoder() -> Callable[[dict[str, Any]], str]:
    """Compact, UTF-8 (not \\u-escaped), NaN-refusing JSON, built once.

    json.dumps builds a fresh encoder on every call, which costs more than encoding a small dict;
    the C encoder it builds can be made once and reused (reference cycles then end in RecursionError).
    """
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_value)
    if json.encoder.c_make_encoder is None:
        return encoder.encode
    make = json.encoder.c_make_encoder(
        None, _json_value, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda document: "".join(make(document, 0))


_encode_json = _compact_json_encoder()


def _properties_document(properties: Any) -> str:
    if properties is None or (isinstance(properties, float) and math.isnan(properties)):
        return "{}"
    if not isinstance(properties, dict):
        raise TypeError(f"must be a dict of property values, got {type(properties).__name__}")
    try:
        return _encode_json(properties)
    except (ValueError, RecursionError) as error:  # NaN, infinity or a reference cycle somewhere inside
        raise ValueError(f"cannot be stored as JSON ({error}): {properties!r}") from error


def _shown(value: Any) -> str:
    """repr of a value as the user wrote it (numpy scalars shown as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _row_error(integration_id: str, chunk: pd.DataFrame, position: Any, column: str, problem: str) -> StoreInputError:
    object_type = chunk.at[position, "object_type"] if "object_type" in chunk.columns else None
    external_id = chunk.at[position, "external_id"] if "external_id" in chunk.columns else None
    where = f"integration {integration_id!r}, object {object_type!r}, row {position} (external_id {external_id!r})"
    return StoreInputError(f"{where}: field {column!r} {problem}")
