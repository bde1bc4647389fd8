"""Records: reads by Id, and every write (create, update, delete, upsert, DML batches) with the checks a
real org makes before it commits."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from typing import Any

from salesforce_sync.emulator.clock import iso_to_ms
from salesforce_sync.emulator.errors import SalesforceApiError, not_found
from salesforce_sync.emulator.ids import OBJECT_BY_PREFIX, make_id, normalize_id
from salesforce_sync.emulator.schema import FieldDef, ObjectDef

PERSON_OBJECTS = ("Lead", "Contact")
CAMPAIGN_MEMBER_MIRRORS = ("FirstName", "LastName", "Name", "Email", "Phone", "Title", "HasOptedOutOfEmail", "DoNotCall")


class RecordStore:
    """Mixin of `Org`: record reads and writes, each write one transaction that rolls back whole."""


    def count(self, object_name: str, *, include_deleted: bool = False) -> int:
        obj = self.object(object_name)
        where = "" if include_deleted or not obj.field("IsDeleted") else ' WHERE "IsDeleted" = 0'
        with self.read() as conn:
            return conn.execute(f'SELECT COUNT(*) FROM "{obj.name}"{where}').fetchone()[0]

    def get_stored(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        """A record in storage form (including a soft-deleted one), or None."""
        obj = self.object(object_name)
        with self.read() as conn:
            cur = conn.execute(f'SELECT * FROM "{obj.name}" WHERE "Id" = ? COLLATE NOCASE', (normalize_id(record_id),))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None

    def find_ids(self, object_name: str, field_name: str, value: Any) -> list[str]:
        obj = self.object(object_name)
        f = obj.field(field_name)
        if f is None or f.storage is None:
            raise not_found()
        with self.read() as conn:
            rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE'
                                + (' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""),
                                (value,)).fetchall()
        return [r[0] for r in rows]

    def create(self, object_name: str, values: dict[str, Any], *, stamp_ms: int | None = None) -> str:
        """Insert one record from API-form values; returns its id."""
        with self.write(records=True) as conn:
            return self._create(conn, self.object(object_name), values, stamp_ms)

    def update(self, object_name: str, record_id: str, values: dict[str, Any], *, stamp_ms: int | None = None) -> None:
        with self.write(records=True) as conn:
            self._update(conn, self.object(object_name), record_id, values, stamp_ms)

    def delete(self, object_name: str, record_id: str, *, stamp_ms: int | None = None) -> None:
        with self.write(records=True) as conn:
            self._delete(conn, self.object(object_name), record_id, stamp_ms)

    def upsert(self, object_name: str, external_field: str, value: str, values: dict[str, Any]) -> tuple[str, bool]:
        """Upsert by external id; returns (id, created). Several matches raise a 300."""
        with self.write(records=True) as conn:
            return self._upsert(conn, self.object(object_name), external_field, value, values)

    def hard_delete(self, object_name: str, record_ids: Iterable[str]) -> int:
        """Remove records for good: no recycle bin, invisible to queryAll."""
        obj = self.object(object_name)
        ids = [normalize_id(i) for i in record_ids]
        with self.write(records=True) as conn:
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" for _ in chunk)
                removed += conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" IN ({marks}) COLLATE NOCASE',
                                        chunk).rowcount
        return removed

    def apply_dml(self, operations: list[tuple[str, str, Any]], *, all_or_none: bool) -> list[dict[str, Any]]:
        """Run (op, object, payload) writes for sObject Collections and Bulk ingest; one result per record.
        With all_or_none, any failure rolls every write back."""
        results: list[dict[str, Any]] = []
        failed = False
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for op, object_name, payload in operations:
                    self._conn.execute("SAVEPOINT rec")
                    try:
                        results.append(self._dml_one(op, object_name, payload))
                        self._conn.execute("RELEASE rec")
                    except SalesforceApiError as err:
                        self._conn.execute("ROLLBACK TO rec")
                        self._conn.execute("RELEASE rec")
                        failed = True
                        results.append({"success": False, "errors": [err.record_error()]})
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if failed and all_or_none:
                self._conn.execute("ROLLBACK")
                rolled_back = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                               "message": "Record rolled back because not all records were valid and the "
                                          "request was using AllOrNone header", "fields": []}
                return [r if not r["success"] else {"success": False, "errors": [rolled_back]} for r in results]
            self._conn.execute("COMMIT")
            self._record_writes += 1
        return results

    def _dml_one(self, op: str, object_name: str, payload: Any) -> dict[str, Any]:
        conn = self._conn
        obj = self.object(object_name)
        if op == "create":
            return {"id": self._create(conn, obj, payload, None), "success": True, "errors": []}
        if op == "update":
            values = dict(payload)
            record_id = values.pop("Id", None) or values.pop("id", None)
            if not record_id:
                raise SalesforceApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            self._update(conn, obj, record_id, values, None)
            return {"id": normalize_id(record_id), "success": True, "errors": []}
        if op == "delete":
            self._delete(conn, obj, payload, None)
            return {"id": normalize_id(payload), "success": True, "errors": []}
        if op == "hardDelete":
            stored = self._stored(conn, obj, payload)
            if stored is None:
                raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (stored["Id"],))
            return {"id": stored["Id"], "success": True, "errors": []}
        if op == "upsert":
            ext_field, values = payload
            record_id, created = self._upsert(conn, obj, ext_field, values.get(ext_field), values)
            return {"id": record_id, "success": True, "errors": [], "created": created}
        raise ValueError(f"unknown DML operation {op!r}")

    # -- write internals (run inside a write transaction) --

    def _stored(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: Any) -> dict[str, Any] | None:
        if not isinstance(record_id, str) or len(record_id) not in (15, 18):
            raise SalesforceApiError(400, "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}")
        cur = conn.execute(f'SELECT * FROM "{obj.name}" WHERE "Id" = ? COLLATE NOCASE', (normalize_id(record_id),))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def _convert_values(self, obj: ObjectDef, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            f = obj.field(name)
            if f is None or f.storage is None:
                raise SalesforceApiError(
                    400, "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {obj.name}", [name])
            allowed = f.createable if creating else f.updateable
            if not allowed:
                raise SalesforceApiError(
                    400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.", [f.name])
            out[f.name] = to_storage(f, value)
        return out

    def _check_references(self, conn: sqlite3.Connection, obj: ObjectDef, stored: dict[str, Any]) -> None:
        for name, value in stored.items():
            f = obj.field(name)
            if f.type != "reference" or value is None:
                continue
            target = OBJECT_BY_PREFIX.get(value[:3])
            if target not in f.reference_to or self._schema.object(target) is None or \
                    conn.execute(f'SELECT 1 FROM "{target}" WHERE "Id" = ?', (value,)).fetchone() is None:
                raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])

    def _check_unique(self, conn: sqlite3.Connection, obj: ObjectDef, stored: dict[str, Any], own_id: str | None) -> None:
        for name, value in stored.items():
            f = obj.field(name)
            if not f.unique or value is None:
                continue
            row = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE AND "Id" != ?',
                               (value, own_id or "")).fetchone()
            if row:
                raise SalesforceApiError(400, "DUPLICATE_VALUE",
                                         f"duplicate value found: {f.name} duplicates value on record with id: {row[0]}",
                                         [f.name])

    def _create(self, conn: sqlite3.Connection, obj: ObjectDef, values: dict[str, Any], stamp_ms: int | None) -> str:
        stored = self._convert_values(obj, values, creating=True)
        for f in obj.stored_fields:
            if f.name not in stored and f.default is not None and f.createable:
                stored[f.name] = to_storage(f, f.default)
        missing = [f.name for f in obj.stored_fields
                   if not f.nillable and f.createable and f.type != "boolean" and stored.get(f.name) is None
                   and f.name not in ("OwnerId",)]
        if obj.name == "CampaignMember" and not (stored.get("LeadId") or stored.get("ContactId")):
            missing.append("LeadId")
        if missing:
            raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING",
                                     f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_references(conn, obj, stored)
        self._check_unique(conn, obj, stored, None)
        user = self._integration_user(conn)
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        number = conn.execute(f'SELECT COUNT(*) FROM "{obj.name}"').fetchone()[0] + 1
        record_id = make_id(obj.key_prefix, number, pod="5h")
        while conn.execute(f'SELECT 1 FROM "{obj.name}" WHERE "Id" = ?', (record_id,)).fetchone():
            number += 1
            record_id = make_id(obj.key_prefix, number, pod="5h")
        system = {"Id": record_id, "IsDeleted": 0, "CreatedDate": stamp, "CreatedById": user,
                  "LastModifiedDate": stamp, "LastModifiedById": user, "SystemModstamp": stamp, "OwnerId": user}
        for name, value in system.items():
            if obj.field(name) and (name != "OwnerId" or stored.get("OwnerId") is None):
                stored[name] = value
        for f in obj.stored_fields:
            if f.type == "boolean" and stored.get(f.name) is None:
                stored[f.name] = 1 if f.default is True else 0
        if obj.name == "CampaignMember":
            self._fill_campaign_member(conn, stored)
        if obj.field("Name") and obj.field("LastName"):
            stored["Name"] = " ".join(p for p in (stored.get("FirstName"), stored.get("LastName")) if p)
        self._insert_rows(conn, obj.name, [stored])
        return record_id

    def _fill_campaign_member(self, conn: sqlite3.Connection, stored: dict[str, Any]) -> None:
        duplicate = conn.execute(
            'SELECT 1 FROM "CampaignMember" WHERE "CampaignId" = ? AND ("LeadId" = ? OR "ContactId" = ?)',
            (stored["CampaignId"], stored.get("LeadId") or "", stored.get("ContactId") or "")).fetchone()
        if duplicate:
            raise SalesforceApiError(400, "DUPLICATE_VALUE", "Already a campaign member.")
        person_type = "Lead" if stored.get("LeadId") else "Contact"
        person_id = stored.get("LeadId") or stored.get("ContactId")
        cols = ", ".join(f'"{c}"' for c in CAMPAIGN_MEMBER_MIRRORS)
        row = conn.execute(f'SELECT {cols} FROM "{person_type}" WHERE "Id" = ?', (person_id,)).fetchone()
        stored.update(dict(zip(CAMPAIGN_MEMBER_MIRRORS, row)))
        stored.update({"Type": person_type, "LeadOrContactId": person_id})
        company = "Company" if person_type == "Lead" else None
        if company:
            stored["CompanyOrAccount"] = conn.execute('SELECT "Company" FROM "Lead" WHERE "Id" = ?', (person_id,)).fetchone()[0]

    def _integration_user(self, conn: sqlite3.Connection) -> str:
        row = conn.execute('SELECT "Id" FROM "User" WHERE "Username" = ?', (self.settings.username,)).fetchone()
        return row[0] if row else make_id("005", 1)

    def _update(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, values: dict[str, Any],
                stamp_ms: int | None) -> None:
        current = self._stored(conn, obj, record_id)
        if current is None:
            raise not_found()
        if current.get("IsDeleted"):
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if obj.name == "Lead" and current.get("IsConverted"):
            raise SalesforceApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        changes = self._convert_values(obj, values, creating=False)
        self._check_references(conn, obj, changes)
        self._check_unique(conn, obj, changes, current["Id"])
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        changes.update({"LastModifiedDate": stamp, "SystemModstamp": stamp,
                        "LastModifiedById": self._integration_user(conn)})
        if obj.field("Name") and obj.field("LastName") and ({"FirstName", "LastName"} & changes.keys()):
            merged = {**current, **changes}
            changes["Name"] = " ".join(p for p in (merged.get("FirstName"), merged.get("LastName")) if p)
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        conn.execute(f'UPDATE "{obj.name}" SET {sets} WHERE "Id" = ?', (*changes.values(), current["Id"]))
        if obj.name in PERSON_OBJECTS:
            mirrored = {k: v for k, v in changes.items() if k in CAMPAIGN_MEMBER_MIRRORS}
            if mirrored:
                sets = ", ".join(f'"{k}" = ?' for k in mirrored)
                conn.execute(f'UPDATE "CampaignMember" SET {sets} WHERE "{obj.name}Id" = ?',
                             (*mirrored.values(), current["Id"]))

    def _delete(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, stamp_ms: int | None) -> None:
        current = self._stored(conn, obj, record_id)
        if current is None:
            raise not_found()
        if current.get("IsDeleted"):
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if not obj.field("IsDeleted") or obj.name == "CampaignMember":
            # Junction objects skip the recycle bin: the row is gone, invisible even to queryAll.
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (current["Id"],))
            return
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        conn.execute(f'UPDATE "{obj.name}" SET "IsDeleted" = 1, "LastModifiedDate" = ?, "SystemModstamp" = ? '
                     'WHERE "Id" = ?', (stamp, stamp, current["Id"]))
        if obj.name in PERSON_OBJECTS:
            conn.execute(f'DELETE FROM "CampaignMember" WHERE "{obj.name}Id" = ?', (current["Id"],))

    def _upsert(self, conn: sqlite3.Connection, obj: ObjectDef, external_field: str, value: Any,
                values: dict[str, Any]) -> tuple[str, bool]:
        f = obj.field(external_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SalesforceApiError(404, "NOT_FOUND",
                                     f"Provided external ID field does not exist or is not accessible: {external_field}")
        body = {k: v for k, v in values.items() if k.lower() != f.name.lower()}
        where = ' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""
        rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE{where}',
                            (value,)).fetchall()
        if len(rows) > 1:
            raise SalesforceApiError(300, "MULTIPLE_CHOICES", f"more than one record found for {f.name}={value}")
        if rows:
            self._update(conn, obj, rows[0][0], body, None)
            return rows[0][0], False
        if f.name == "Id":
            raise not_found()
        return self._create(conn, obj, {**body, f.name: value}, None), True


def to_storage(f: FieldDef, value: Any) -> Any:
    """An API-form value (JSON or CSV text) in the org's storage form; a bad value is Salesforce's error."""
    if value is None or value == "" or value == "#N/A":
        return None
    storage = f.storage
    try:
        if storage == "text":
            if isinstance(value, list):
                value = ";".join(value)
            if not isinstance(value, str):
                value = str(value)
            if f.type in ("id", "reference"):
                return normalize_id(value)
            if f.length and len(value) > f.length:
                raise SalesforceApiError(400, "STRING_TOO_LONG",
                                         f"{f.label or f.name}: data value too large: {value[:40]} (max length={f.length})",
                                         [f.name])
            return value
        if storage == "bool":
            if isinstance(value, bool):
                return int(value)
            if str(value).lower() in ("true", "false", "1", "0"):
                return int(str(value).lower() in ("true", "1"))
            raise ValueError(value)
        if storage == "int":
            return int(float(value))
        if storage == "real":
            return float(value)
        if storage == "datetime":
            ms = iso_to_ms(str(value))
            if ms is None:
                raise ValueError(value)
            return ms
        if storage == "date":
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except (ValueError, TypeError):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR" if not isinstance(value, str) else "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                 f"{f.name}: value not of required type: {value}", [f.name]) from None
    return value
