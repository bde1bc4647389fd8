"""Avro schemas of the change events and their encoding, built from the emulator's object definitions.

As Salesforce serves them: record `<Entity>ChangeEvent` in namespace `com.sforce.eventbus`, the
ChangeEventHeader first, then every body field as a `["null", T]` union (dates and datetimes as epoch-ms
longs, compounds as nested records); payloads are bare Avro datums; the header's changedFields, nulledFields
and diffFields are hex bitmaps over the Avro field positions (`p-0x..` entries for the parts of a compound).

Datums are written by a small encoder compiled from the schema (Avro's binary encoding of the few types these
schemas use): fastavro's schemaless_writer re-reads the schema on every call, which cost ~120 µs an event.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from salesforce_sync.emulator.change_log import StoredChange
from salesforce_sync.emulator.changes import EventField, event_fields
from salesforce_sync.emulator.schema import FieldDef, ObjectDef

NAMESPACE = "com.sforce.eventbus"
CHANGE_TYPES = ["CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE",
                "GAP_OVERFLOW", "SNAPSHOT"]
_STRINGS = {"type": "array", "items": "string"}
HEADER = {
    "type": "record", "name": "ChangeEventHeader", "namespace": NAMESPACE,
    "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": _STRINGS},
        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": NAMESPACE,
                                        "symbols": CHANGE_TYPES}},
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": _STRINGS},
        {"name": "diffFields", "type": _STRINGS},
        {"name": "changedFields", "type": _STRINGS},
    ],
}
_AVRO_TYPES = {"text": "string", "bool": "boolean", "real": "double", "datetime": "long", "date": "long"}
_EPOCH = dt.date(1970, 1, 1)
Encoder = Callable[[Any], bytes]


def _avro_type(f: FieldDef) -> str:
    if f.storage == "int":
        return "long" if f.type == "long" else "int"
    return _AVRO_TYPES[f.storage]


def _converter(f: FieldDef) -> Callable[[Any], Any] | None:
    """How a stored value becomes its Avro datum (None: as stored): booleans from 0/1, dates as epoch ms of their
    midnight UTC."""
    storage = f.storage
    if storage == "bool":
        return bool
    if storage == "date":
        return lambda stored: (dt.date.fromisoformat(stored) - _EPOCH).days * 86_400_000
    if storage == "int":
        return int
    return None


def _union(name: str, avro_type: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "default": None}


def _schema_json(obj: ObjectDef, layout: list[EventField]) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"name": "ChangeEventHeader", "type": HEADER}]
    records: dict[str, list[str]] = {}  # nested record types defined so far: an Avro name is defined once
    for ef in layout:
        if not ef.parts:
            fields.append(_union(ef.name, _avro_type(ef.field)))
            continue
        part_names = [name for name, _ in ef.parts]
        record = "Address" if ef.name.endswith("Address") else ef.name
        if records.get(record, part_names) != part_names:
            record = ef.name
        if record in records:
            fields.append(_union(ef.name, f"{NAMESPACE}.{record}"))
            continue
        records[record] = part_names
        fields.append(_union(ef.name, {"type": "record", "name": record, "namespace": NAMESPACE,
                                       "fields": [_union(name, _avro_type(f)) for name, f in ef.parts]}))
    return {"type": "record", "name": f"{obj.name}ChangeEvent", "namespace": NAMESPACE, "fields": fields}


def _varint(number: int) -> bytes:
    """Avro's int/long: zigzag, then 7 bits a byte, low first."""
    number = (number << 1) ^ (number >> 63)
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return _varint(len(data)) + data


def _encoder(avro_type: Any, named: dict[str, Encoder]) -> Encoder:
    """An encoder for one Avro type of these schemas: primitives, string arrays, enums, records, ["null", T]."""
    if isinstance(avro_type, list):  # ["null", T]: branch 0 is null, branch 1 (zigzag 2) the value
        value = _encoder(avro_type[1], named)
        return lambda datum: b"\x00" if datum is None else b"\x02" + value(datum)
    if isinstance(avro_type, str):
        primitives: dict[str, Encoder] = {
            "string": _string, "int": _varint, "long": _varint, "boolean": lambda v: b"\x01" if v else b"\x00",
            "double": lambda v: struct.pack("<d", v)}
        return primitives.get(avro_type) or (lambda datum: named[avro_type](datum))
    kind = avro_type["type"]
    if kind == "array":
        return lambda items: (_varint(len(items)) + b"".join(map(_string, items)) + b"\x00") if items else b"\x00"
    full_name = f"{avro_type.get('namespace', NAMESPACE)}.{avro_type['name']}"
    if kind == "enum":
        index = {symbol: _varint(i) for i, symbol in enumerate(avro_type["symbols"])}
        named[full_name] = index.__getitem__
        return named[full_name]
    fields = [(f["name"], _encoder(f["type"], named)) for f in avro_type["fields"]]

    def record(datum: dict[str, Any]) -> bytes:
        return b"".join(encode(datum[name]) for name, encode in fields)
    named[full_name] = record
    return record


@dataclass
class EventSchema:
    """One object's change-event schema: its JSON, id (changes when fields change) and encoder."""

    obj: ObjectDef
    layout: list[EventField]
    schema_json: str
    schema_id: str
    encoder: Encoder
    columns: frozenset[str] = field(init=False)
    converters: dict[str, Callable[[Any], Any] | None] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = frozenset(c for ef in self.layout for c in ef.columns)
        self.converters = {f.name: _converter(f) for ef in self.layout for f in ([ef.field] if ef.field else
                                                                                   [f for _, f in ef.parts])}

    def _value(self, column: str, values: dict[str, Any], shown: frozenset[str] | set[str]) -> Any:
        value = values.get(column) if column in shown else None
        convert = self.converters[column]
        return convert(value) if convert is not None and value is not None else value

    @classmethod
    def build(cls, obj: ObjectDef) -> EventSchema:
        layout = event_fields(obj)
        schema = _schema_json(obj, layout)
        text = json.dumps(schema, separators=(",", ":"))
        schema_id = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:16]).decode().rstrip("=")
        return cls(obj, layout, text, schema_id, _encoder(schema, {}))

    def encode(self, change: StoredChange) -> bytes:
        return self.encoder(self.datum(change))

    def datum(self, change: StoredChange) -> dict[str, Any]:
        kind = change.change_type
        if kind in ("CREATE", "UNDELETE"):
            shown = self.columns
        elif kind == "UPDATE":
            shown = set(change.changed)
        else:  # DELETE and gaps: header only
            shown = set()
        nulled = {c for c in shown if change.values.get(c) is None} if kind == "UPDATE" else set()
        datum: dict[str, Any] = {"ChangeEventHeader": {
            "entityName": change.entity, "recordIds": change.record_ids, "changeType": kind,
            "changeOrigin": change.origin, "transactionKey": change.transaction_key,
            "sequenceNumber": change.sequence, "commitTimestamp": change.commit_ms,
            "commitNumber": change.replay_id, "commitUser": change.commit_user,
            "nulledFields": self.bitmaps(nulled), "diffFields": [],
            "changedFields": self.bitmaps(shown) if kind == "UPDATE" else [],
        }}
        values = change.values
        for ef in self.layout:
            if not ef.parts:
                datum[ef.name] = self._value(ef.field.name, values, shown)
                continue
            parts = {name: self._value(f.name, values, shown) for name, f in ef.parts}
            datum[ef.name] = parts if any(v is not None for v in parts.values()) else None
        return datum

    def bitmaps(self, columns: set[str]) -> list[str]:
        """Salesforce's field bitmaps: `0x<hex>` over top-level positions (0 is the header), then `<p>-0x<hex>`
        over the parts of the compound at position p."""
        top, nested = 0, []
        for position, ef in enumerate(self.layout, start=1):
            if ef.parts:
                bits = sum(1 << i for i, (_, f) in enumerate(ef.parts) if f.name in columns)
                if bits:
                    nested.append(f"{position}-0x{bits:X}")
            elif ef.field.name in columns:
                top |= 1 << position
        return ([f"0x{top:X}"] if top else []) + nested
