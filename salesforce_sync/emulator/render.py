"""Rows of a compiled query's `page_sql` -> REST JSON records or Bulk API 2.0 CSV chunks.

Both are hot paths (a million Leads at well over 20,000 records/s), so converters are chosen once per
query and applied a column at a time: identity columns cost nothing, booleans go through a C-level
`map`, datetimes are formatted by numpy in one call per column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from salesforce_sync.emulator.ids import OBJECT_BY_PREFIX
from salesforce_sync.emulator.soql import CompiledQuery, SelectedColumn

Column = Sequence[Any]
Converter = Callable[[Column], Column]

COLUMN_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_REST_BOOLEANS = {0: False, 1: True}
_CSV_BOOLEANS = {0: "false", 1: "true"}


def format_datetimes(column: Column, suffix: str) -> list[str | None]:
    """Epoch milliseconds -> `2024-01-02T03:04:05.000` + suffix (`+0000` for REST, `Z` for CSV); None stays None."""
    millis = np.array(column, dtype=np.float64)  # None -> nan; epoch ms fit a double exactly
    missing = np.isnan(millis)
    stamps = np.where(missing, 0, millis).astype(np.int64).astype("datetime64[ms]")
    texts = np.datetime_as_string(stamps, unit="ms", timezone="UTC" if suffix == "Z" else "naive")
    if suffix != "Z":
        texts = np.char.add(texts, suffix)
    out = texts.tolist()
    for index in np.flatnonzero(missing).tolist():
        out[index] = None
    return out


def aggregate_records(query: CompiledQuery, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """AggregateResult records (no url) from the rows of an aggregate query's `aggregate_sql`, one per group."""
    if not rows:
        return []
    slots = list(zip(*rows))
    values = [_rest_converter(c)(slots[c.slots[0]]) for c in query.columns]
    return [{"attributes": {"type": "AggregateResult"}, **dict(zip(query.column_names, row))} for row in zip(*values)]


def _unchanged(values: Column) -> Column:
    return values


def _rest_converter(column: SelectedColumn) -> Converter:
    storage = column.field.storage
    if storage == "bool":
        return lambda values: list(map(_REST_BOOLEANS.get, values))
    if storage == "datetime":
        return lambda values: format_datetimes(values, "+0000")
    return _unchanged


def _csv_converter(column: SelectedColumn) -> Converter:
    storage = column.field.storage
    if storage == "bool":
        return lambda values: list(map(_CSV_BOOLEANS.get, values))
    if storage == "datetime":
        return lambda values: format_datetimes(values, "Z")
    return _unchanged


def _addresses(parts: Sequence[Column | None], size: int) -> list[dict[str, Any] | None]:
    """Street, City, State, PostalCode, Country columns -> REST address objects (None when all are empty)."""
    blank = [None] * size
    streets, cities, states, codes, countries = (p if p is not None else blank for p in parts)
    return [
        None if street is None and city is None and state is None and code is None and country is None else
        {"city": city, "country": country, "geocodeAccuracy": None, "latitude": None, "longitude": None,
         "postalCode": code, "state": state, "street": street}
        for street, city, state, code, country in zip(streets, cities, states, codes, countries)
    ]


@dataclass
class _Level:
    """One object level of a nested REST record: its keys in SELECT order and where their values come from."""

    type_label: str
    id_slot: int
    keys: list[str] = field(default_factory=lambda: ["attributes"])
    sources: list[int | _Level] = field(default_factory=list)  # a selected column's index, or a parent level


class RestRenderer:
    """Builds REST query records for one compiled query and API version (e.g. "59.0")."""

    def __init__(self, query: CompiledQuery, api_version: str) -> None:
        self.query = query
        sobjects_url = f"/services/data/v{api_version}/sobjects/"
        self.root_url = f"{sobjects_url}{query.object_name}/"
        self.url_by_prefix = {prefix: f"{sobjects_url}{name}/" for prefix, name in OBJECT_BY_PREFIX.items()}
        self.unknown_prefix_url = sobjects_url
        self.converters = [_rest_converter(c) for c in query.columns]
        self.root = _Level(query.object_name, query.id_slot)
        levels = {(): self.root}
        by_path = {r.path: r for r in query.relationships}
        for index, column in enumerate(query.columns):
            level = self.root
            for depth in range(1, len(column.relationship_path) + 1):
                path = column.relationship_path[:depth]
                if path not in levels:
                    levels[path] = _Level(by_path[path].type_label, by_path[path].id_slot)
                    level.keys.append(path[-1])
                    level.sources.append(levels[path])
                level = levels[path]
            level.keys.append(column.field.name)
            level.sources.append(index)

    def records(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """One REST record per page_sql row, in order."""
        if not rows:
            return []
        slots = list(zip(*rows))
        values = []
        for column, convert in zip(self.query.columns, self.converters):
            if column.field.type == "address":
                values.append(_addresses([slots[s] if s >= 0 else None for s in column.slots], len(rows)))
            else:
                values.append(convert(slots[column.slots[0]]))
        kind, url = self.query.object_name, self.root_url
        attributes = [{"type": kind, "url": url + record_id} for record_id in slots[self.root.id_slot]]
        keys = self.root.keys
        return [dict(zip(keys, row)) for row in zip(attributes, *self._columns(self.root, slots, values))]

    def _columns(self, level: _Level, slots: list[tuple], values: list[Column]) -> list[Column]:
        return [values[s] if isinstance(s, int) else self._parents(s, slots, values) for s in level.sources]

    def json_records(self, rows: Sequence[Sequence[Any]]) -> str:
        """The JSON array `records(rows)` encodes to, written a column at a time without a dict per record:
        REST query paging's hot path. Every value is JSON-escaped; each record is one %-format of a template."""
        if not rows:
            return "[]"
        slots = list(zip(*rows))
        fragments = [_json_fragments(column, slots) for column in self.query.columns]
        url = json.dumps(self.root_url)[1:-1].replace("%", "%%")
        template = ('{"attributes":{"type":' + _json_literal(self.query.object_name) + ',"url":"' + url + '%s"}'
                    + self._json_keys(self.root) + "}")
        objects = map(template.__mod__, zip(slots[self.root.id_slot], *self._json_columns(self.root, slots, fragments)))
        return "[" + ",".join(objects) + "]"

    @staticmethod
    def _json_keys(level: _Level) -> str:
        return "".join("," + _json_literal(key) + ":%s" for key in level.keys[1:])

    def _json_columns(self, level: _Level, slots: list[tuple], fragments: list[Column]) -> list[Column]:
        return [fragments[s] if isinstance(s, int) else self._json_parents(s, slots, fragments) for s in level.sources]

    def _json_parents(self, level: _Level, slots: list[tuple], fragments: list[Column]) -> list[str]:
        """A lookup's nested object as JSON for every row; null where the lookup is empty."""
        urls, unknown = self.url_by_prefix, self.unknown_prefix_url + level.type_label + "/"
        template = '{"attributes":{"type":' + _json_literal(level.type_label) + ',"url":%s}' + self._json_keys(level) + "}"
        parent_ids = slots[level.id_slot]
        parent_urls = [None if parent_id is None else _json_literal(urls.get(parent_id[:3], unknown) + parent_id)
                       for parent_id in parent_ids]
        return [_JSON_NULL if parent_id is None else template % row
                for parent_id, row in zip(parent_ids, zip(parent_urls, *self._json_columns(level, slots, fragments)))]

    def _parents(self, level: _Level, slots: list[tuple], values: list[Column]) -> list[dict[str, Any] | None]:
        """The nested object of a lookup for every row; None where the lookup is empty."""
        kind, urls, unknown = level.type_label, self.url_by_prefix, self.unknown_prefix_url + level.type_label + "/"
        attributes = [None if parent_id is None else {"type": kind, "url": urls.get(parent_id[:3], unknown) + parent_id}
                      for parent_id in slots[level.id_slot]]
        keys = level.keys
        return [None if row[0] is None else dict(zip(keys, row))
                for row in zip(attributes, *self._columns(level, slots, values))]


_JSON_NULL = "null"
_JSON_BOOLEANS = {0: "false", 1: "true", None: _JSON_NULL}
_json_literal = json.JSONEncoder(separators=(",", ":")).encode
_json_string = json.encoder.encode_basestring_ascii  # the C encoder: '"' + escaped ASCII + '"'


def _json_fragments(column: SelectedColumn, slots: list[tuple]) -> list[str]:
    """One selected column's values as JSON text, a string per row, as json.dumps would write them."""
    if column.field.type == "address":
        return [_json_literal(a) for a in _addresses([slots[s] if s >= 0 else None for s in column.slots],
                                                     len(slots[0]))]
    values = slots[column.slots[0]]
    storage = column.field.storage
    if storage == "bool":
        return list(map(_JSON_BOOLEANS.__getitem__, values))
    if storage == "datetime":
        return [_JSON_NULL if text is None else '"' + text + '"' for text in format_datetimes(values, "+0000")]
    if storage in ("text", "date"):
        return [_JSON_NULL if value is None else _json_string(value) for value in values]
    return [_JSON_NULL if value is None else _json_literal(value) for value in values]


class CsvRenderer:
    """Writes Bulk API 2.0 query result chunks: every value quoted, nulls as "", each chunk with a header."""

    def __init__(self, query: CompiledQuery, column_delimiter: str = "COMMA", line_ending: str = "LF") -> None:
        if column_delimiter not in COLUMN_DELIMITERS:
            raise ValueError(f"Bulk query columnDelimiter {column_delimiter!r} is not one of "
                             f"{', '.join(COLUMN_DELIMITERS)}")
        if line_ending not in LINE_ENDINGS:
            raise ValueError(f"Bulk query lineEnding {line_ending!r} is not one of {', '.join(LINE_ENDINGS)}")
        compound = [c.name for c in query.columns if c.field.type == "address"]
        if compound:
            raise ValueError(f"Bulk CSV cannot hold compound field {compound[0]!r} of {query.object_name}")
        self.query = query
        self.delimiter = COLUMN_DELIMITERS[column_delimiter]
        self.line_ending = LINE_ENDINGS[line_ending]
        self.converters = [_csv_converter(c) for c in query.columns]

    def chunk(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """A complete CSV document (header row first) for these page_sql rows, UTF-8 encoded."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator=self.line_ending,
                            quoting=csv.QUOTE_ALL)
        writer.writerow(self.query.column_names)
        if rows:
            slots = list(zip(*rows))
            columns = [convert(slots[c.slots[0]]) for c, convert in zip(self.query.columns, self.converters)]
            writer.writerows(zip(*columns))
        return buffer.getvalue().encode("utf-8")
