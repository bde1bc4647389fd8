"""Avro schemas of the change events and their encoding, built from the emulator's object definitions.

As Salesforce serves them: record `<Entity>ChangeEvent` in namespace `com.sforce.eventbus`, the
ChangeEventHeader first, then every body field as a `["null", T]` union (dates and datetimes as epoch-ms
longs, compounds as nested records); payloads are bare Avro datums; the header's changedFields, nulledFields
and diffFields are hex bitmaps over the Avro field positions (`p-0x..` entries for the parts of a compound).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import fastavro

from salesforce_sync.emulator.changes import EventField, StoredChange, event_fields
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


def _avro_type(f: FieldDef) -> str:
    if f.storage == "int":
        return "long" if f.type == "long" else "int"
    return _AVRO_TYPES[f.storage]


def _avro_value(f: FieldDef, stored: Any) -> Any:
    """A stored value as its Avro datum: booleans from 0/1, dates as epoch ms of their midnight UTC."""
    if stored is None:
        return None
    if f.storage == "bool":
        return bool(stored)
    if f.storage == "date":
        return (dt.date.fromisoformat(stored) - _EPOCH).days * 86_400_000
    if f.storage == "int":
        return int(stored)
    return stored


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


@dataclass
class EventSchema:
    """One object's change-event schema: its JSON, id (changes when fields change) and encoder."""

    obj: ObjectDef
    layout: list[EventField]
    schema_json: str
    schema_id: str
    parsed: Any

    @classmethod
    def build(cls, obj: ObjectDef) -> EventSchema:
        layout = event_fields(obj)
        text = json.dumps(_schema_json(obj, layout), separators=(",", ":"))
        schema_id = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:16]).decode().rstrip("=")
        return cls(obj, layout, text, schema_id, fastavro.parse_schema(json.loads(text)))

    def encode(self, change: StoredChange) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, self.parsed, self.datum(change))
        return out.getvalue()

    def datum(self, change: StoredChange) -> dict[str, Any]:
        kind = change.change_type
        if kind in ("CREATE", "UNDELETE"):
            shown = {c for ef in self.layout for c in ef.columns}
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
        for ef in self.layout:
            if not ef.parts:
                shown_value = ef.field.name in shown
                datum[ef.name] = _avro_value(ef.field, change.values.get(ef.field.name)) if shown_value else None
                continue
            parts = {name: _avro_value(f, change.values.get(f.name)) if f.name in shown else None
                     for name, f in ef.parts}
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
