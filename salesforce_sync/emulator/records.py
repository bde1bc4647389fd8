"""Records: reads by Id, and every write (create, update, delete, upsert, DML batches) with the checks a
real org makes before it commits, refusing what it refuses with its status codes and messages.

Checks every object shares live here; what is special about one object is declared in write_rules.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from salesforce_sync.emulator.clock import iso_to_ms
from salesforce_sync.emulator.errors import SalesforceApiError, invalid_type, not_found
from salesforce_sync.emulator.ids import OBJECT_BY_PREFIX, canonical_id, make_id, normalize_id
from salesforce_sync.emulator.schema import FieldDef, ObjectDef, label_for
from salesforce_sync.emulator.write_rules import Change, duplicate_error, field_label, rules_for

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                           "SystemModstamp"})
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                          "header", "fields": []}


@dataclass(frozen=True)
class WriteOptions:
    """What a request says about its writes: `allow_save` from `Sforce-Duplicate-Rule-Header: allowSave=true`
    (saves past Alert duplicate rules, never Block ones); the API version record URLs in errors name."""

    allow_save: bool = False
    api_version: str = "59.0"


DEFAULT_WRITE = WriteOptions()


@dataclass(frozen=True)
class _CreatePlan:
    """What every insert of an object needs from its fields, worked out once per schema version."""

    stored: tuple[FieldDef, ...]
    defaults: tuple[FieldDef, ...]  # createable fields with a default value
    required: tuple[str, ...]  # not nillable, createable, no default (OwnerId defaults to the writer)
    booleans: tuple[FieldDef, ...]


_plans: dict[int, tuple[ObjectDef, _CreatePlan]] = {}


def _create_plan(obj: ObjectDef) -> _CreatePlan:
    cached = _plans.get(id(obj))
    if cached is not None and cached[0] is obj:
        return cached[1]
    stored = tuple(obj.stored_fields)
    plan = _CreatePlan(
        stored, tuple(f for f in stored if f.default is not None and f.createable),
        tuple(f.name for f in stored if not f.nillable and f.createable and f.type != "boolean"
              and f.default is None and f.name != "OwnerId"),
        tuple(f for f in stored if f.type == "boolean"))
    _plans[id(obj)] = (obj, plan)
    return plan


class RecordStore:
    """Mixin of `Org`: record reads and writes, each write one transaction that rolls back whole, or a
    savepoint inside the caller's `transaction()`."""

    _batch_context: tuple[int, str, dict[str, str]] | None = None  # (stamp, user, duplicate rules) of a DML batch

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

    # ---- transactions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction around several writes (Composite allOrNone, convertLead): every write inside joins
        it as a savepoint, and an exception leaving the block rolls all of them back."""
        with self._lock:
            if self._conn.in_transaction:
                with self._savepoint() as conn:
                    yield conn
                return
            with self.write(records=True) as conn:
                yield conn

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("SAVEPOINT record_write")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO record_write")
            conn.execute("RELEASE record_write")
            raise
        conn.execute("RELEASE record_write")

    def _locked_rows(self, obj: ObjectDef, record_id: str | None) -> None:
        if self.take_row_locks(obj.name, 1):
            raise row_lock_error(record_id or obj.key_prefix)

    # ---- writes ----------------------------------------------------------------------------------

    def create(self, object_name: str, values: dict[str, Any], *, stamp_ms: int | None = None,
               options: WriteOptions = DEFAULT_WRITE) -> str:
        """Insert one record from API-form values; returns its id."""
        obj = self.object(object_name)
        self._locked_rows(obj, None)
        with self.transaction() as conn:
            return self._create(conn, obj, values, stamp_ms, options)

    def update(self, object_name: str, record_id: str, values: dict[str, Any], *, stamp_ms: int | None = None,
               options: WriteOptions = DEFAULT_WRITE) -> None:
        obj = self.object(object_name)
        self._locked_rows(obj, record_id)
        with self.transaction() as conn:
            self._update(conn, obj, record_id, values, stamp_ms, options)

    def delete(self, object_name: str, record_id: str, *, stamp_ms: int | None = None) -> None:
        obj = self.object(object_name)
        self._locked_rows(obj, record_id)
        with self.transaction() as conn:
            self._delete(conn, obj, record_id, stamp_ms)

    def upsert(self, object_name: str, external_field: str, value: str, values: dict[str, Any], *,
               options: WriteOptions = DEFAULT_WRITE) -> tuple[str, bool]:
        """Upsert by external id; returns (id, created). Several matches raise a 300."""
        obj = self.object(object_name)
        self._locked_rows(obj, None)
        with self.transaction() as conn:
            return self._upsert(conn, obj, external_field, value, values, options)

    def hard_delete(self, object_name: str, record_ids: Iterable[str]) -> int:
        """Remove records for good: no recycle bin, invisible to queryAll."""
        obj = self.object(object_name)
        ids = [normalize_id(i) for i in record_ids]
        with self.transaction() as conn:
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" for _ in chunk)
                removed += conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" IN ({marks}) COLLATE NOCASE',
                                        chunk).rowcount
        return removed

    def apply_dml(self, operations: list[tuple[str, str, Any]], *, all_or_none: bool,
                  options: WriteOptions = DEFAULT_WRITE) -> list[dict[str, Any]]:
        """Run (op, object, payload) writes for sObject Collections and Bulk ingest; one result per record in
        input order. With all_or_none, any failure rolls every write back: the failing records keep their
        error, the others get ALL_OR_NONE_OPERATION_ROLLED_BACK."""
        locked: dict[str, int] = {}
        for _, object_name, _ in operations:
            locked[object_name] = locked.get(object_name, 0) + 1
        locked = {name: self.take_row_locks(name, n) for name, n in locked.items() if self.schema.object(name)}
        results: list[dict[str, Any]] = []
        with self.transaction() as conn:
            conn.execute("SAVEPOINT dml_batch")
            outer = self._batch_context
            self._batch_context = (*self._stamp_and_user(conn, None), self.settings.duplicate_rules)
            try:
                for op, object_name, payload in operations:
                    try:
                        if locked.get(object_name):
                            locked[object_name] -= 1
                            raise row_lock_error(_payload_id(payload))
                        with self._savepoint():
                            results.append(self._dml_one(op, object_name, payload, options))
                    except SalesforceApiError as err:
                        results.append({"success": False, "errors": [err.record_error()]})
            finally:
                self._batch_context = outer
            failed = any(not r["success"] for r in results)
            if failed and all_or_none:
                conn.execute("ROLLBACK TO dml_batch")
            conn.execute("RELEASE dml_batch")
        if failed and all_or_none:
            return [r if not r["success"] else {"success": False, "errors": [ROLLED_BACK]} for r in results]
        return results

    def _dml_one(self, op: str, object_name: str, payload: Any, options: WriteOptions) -> dict[str, Any]:
        conn = self._conn
        if op == "delete":
            return {"id": self._delete_by_id(conn, payload, object_name), "success": True, "errors": []}
        obj = self._schema.object(object_name)  # the batch's transaction has refreshed the schema
        if obj is None:
            raise invalid_type(object_name)
        if op == "create":
            return {"id": self._create(conn, obj, payload, None, options), "success": True, "errors": []}
        if op == "update":
            values = dict(payload)
            record_id = values.pop("Id", None) or values.pop("id", None)
            if not record_id:
                raise SalesforceApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            self._update(conn, obj, record_id, values, None, options, missing_code="ENTITY_IS_DELETED")
            return {"id": normalize_id(record_id), "success": True, "errors": []}
        if op == "hardDelete":
            stored = self._stored(conn, obj, payload)
            if stored is None:
                raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (stored["Id"],))
            return {"id": stored["Id"], "success": True, "errors": []}
        if op == "upsert":
            ext_field, values = payload
            record_id, created = self._upsert(conn, obj, ext_field, values.get(ext_field), values, options)
            return {"id": record_id, "success": True, "errors": [], "created": created}
        raise ValueError(f"unknown DML operation {op!r}")

    def _delete_by_id(self, conn: sqlite3.Connection, record_id: Any, object_name: str) -> str:
        """A delete naming only an Id (Collections, Bulk): the object follows from the key prefix, and must be
        `object_name` when one is given (a Bulk job's object)."""
        canonical = canonical_id(record_id) if isinstance(record_id, str) else None
        if canonical is None:
            raise SalesforceApiError(400, "MALFORMED_ID", f"malformed id {record_id}")
        obj = self._schema.object(OBJECT_BY_PREFIX.get(canonical[:3], ""))
        if obj is None:
            raise SalesforceApiError(400, "ENTITY_IS_DELETED", "entity is deleted")
        if object_name and obj.name.lower() != object_name.lower():
            raise SalesforceApiError(400, "INVALID_ID_FIELD", f"Invalid {object_name} id: {canonical}", ["Id"])
        self._delete(conn, obj, canonical, None, missing_code="ENTITY_IS_DELETED")
        return canonical

    # ---- write internals (run inside a write transaction) ---------------------------------------

    def _stored(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: Any, *,
                stored_id: bool = False) -> dict[str, Any] | None:
        """The stored row of `record_id` (`stored_id`: already the stored form, read from the table), or None."""
        canonical = record_id if stored_id else canonical_id(record_id) if isinstance(record_id, str) else None
        if canonical is None:
            raise SalesforceApiError(400, "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}")
        cur = conn.execute(f'SELECT * FROM "{obj.name}" WHERE "Id" = ?', (canonical,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def _convert_values(self, obj: ObjectDef, values: dict[str, Any], *, creating: bool,
                        system: bool = False) -> dict[str, Any]:
        """API-form values in storage form. Unknown fields are INVALID_FIELD; fields the write may not set are
        INVALID_FIELD_FOR_INSERT_UPDATE, all named at once (`system` writes such as a conversion may)."""
        out: dict[str, Any] = {}
        read_only: list[str] = []
        for name, value in values.items():
            if name == "attributes":
                continue
            f = obj.field(name)
            if f is None or f.storage is None:
                raise SalesforceApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}",
                                         [name])
            if not system and not (f.createable if creating else f.updateable):
                read_only.append(f.name)
                continue
            out[f.name] = to_storage(f, value)
        if read_only:
            raise SalesforceApiError(
                400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.", read_only)
        for name, value in out.items():
            if value is not None:
                check_value(obj, obj.field(name), value)
        return out

    def _resolve_foreign_keys(self, conn: sqlite3.Connection, obj: ObjectDef, values: dict[str, Any]) -> dict[str, Any]:
        """References given by the parent's external id, as the parent's Id: `{"Account": {"Ext__c": "X"}}` in
        JSON, `Account.Ext__c` or (polymorphic) `Who:Lead.Ext__c` columns in Bulk CSV."""
        if not any("." in name or isinstance(value, dict) for name, value in values.items()):
            return values
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name != "attributes" and isinstance(value, dict):
                keys = [(k, v) for k, v in value.items() if k != "attributes"]
                if len(keys) != 1:
                    raise SalesforceApiError(400, "INVALID_FIELD", f"{name}: give exactly one external id field")
                target_type = (value.get("attributes") or {}).get("type")
                column = f"{name}:{target_type}.{keys[0][0]}" if target_type else f"{name}.{keys[0][0]}"
                key = keys[0][1]
            elif "." in name:
                column, key = name, value
            else:
                out[name] = value
                continue
            ref, target, target_field = foreign_key(self._schema, obj, column)
            if key is None:
                out[ref.name] = None
                continue
            live = ' AND "IsDeleted" = 0' if target.field("IsDeleted") else ""
            ids = conn.execute(f'SELECT "Id" FROM "{target.name}" WHERE "{target_field.name}" = ? COLLATE NOCASE{live}',
                               (key,)).fetchall()
            if len(ids) != 1:
                problem = "not found" if not ids else "matched more than one record"
                raise SalesforceApiError(400, "INVALID_FIELD" if not ids else "DUPLICATE_EXTERNAL_ID",
                                         f"Foreign key external ID: {key} {problem} for field {target_field.name} in "
                                         f"entity {target.name}", [])
            out[ref.name] = ids[0][0]
        return out

    def _check_references(self, conn: sqlite3.Connection, obj: ObjectDef, changes: dict[str, Any]) -> None:
        """Each reference set by the write names a live record of a type the field points to; owners are active."""
        for name, value in changes.items():
            f = obj.field(name)
            if f.type != "reference" or value is None:
                continue
            target = OBJECT_BY_PREFIX.get(value[:3])
            if target not in f.reference_to:
                raise SalesforceApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                                         f"{field_label(obj, f.name)}: id value of incorrect type: {value}", [f.name])
            target_obj = self._schema.object(target)
            live = ' AND "IsDeleted" = 0' if target_obj and target_obj.field("IsDeleted") else ""
            if target_obj is None or \
                    conn.execute(f'SELECT 1 FROM "{target}" WHERE "Id" = ?{live}', (value,)).fetchone() is None:
                raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
            if f.name == "OwnerId" and target == "User" and \
                    not conn.execute('SELECT "IsActive" FROM "User" WHERE "Id" = ?', (value,)).fetchone()[0]:
                raise SalesforceApiError(400, "INACTIVE_OWNER_OR_USER",
                                         f"operation performed with inactive user [{value}] as owner of "
                                         f"{obj.name.lower()}", [])

    def _check_unique(self, conn: sqlite3.Connection, obj: ObjectDef, changes: dict[str, Any], own_id: str | None) -> None:
        for name, value in changes.items():
            f = obj.field(name)
            if not f.unique or value is None:
                continue
            row = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE AND "Id" != ?',
                               (value, own_id or "")).fetchone()
            if row:
                raise SalesforceApiError(400, "DUPLICATE_VALUE",
                                         f"duplicate value found: {f.name} duplicates value on record with id: {row[0]}",
                                         [f.name])

    def _check_record(self, conn: sqlite3.Connection, change: Change, changes: dict[str, Any],
                      options: WriteOptions) -> None:
        """The checks a save runs after field values: references and owners, the object's own rules, unique
        values, then its duplicate rule."""
        obj = change.obj
        self._check_references(conn, obj, changes)
        rules = rules_for(obj.name)
        for check in rules.checks:
            check(conn, change)
        self._check_unique(conn, obj, changes, change.own_id)
        rule = rules.duplicate_rule
        action = self._duplicate_rules().get(obj.name) if rule else None
        if rule is None or action is None or (action == "Alert" and options.allow_save):
            return
        if change.creating or set(rule.keys) & change.changed:
            matches = rule.find(conn, change)
            if matches:
                raise duplicate_error(rule, obj.name, action, matches, options.api_version)

    def _create(self, conn: sqlite3.Connection, obj: ObjectDef, values: dict[str, Any], stamp_ms: int | None,
                options: WriteOptions = DEFAULT_WRITE) -> str:
        plan = _create_plan(obj)
        stored = self._convert_values(obj, self._resolve_foreign_keys(conn, obj, values), creating=True)
        changed = frozenset(stored)
        for f in plan.defaults:
            if f.name not in stored:
                stored[f.name] = to_storage(f, f.default)
        missing = [name for name in plan.required if stored.get(name) is None]
        rules = rules_for(obj.name)
        if rules.required_one_of and not any(stored.get(n) for n in rules.required_one_of):
            missing.append(rules.required_one_of[0])
        if missing:
            raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING",
                                     f"Required fields are missing: [{', '.join(missing)}]", missing)
        for f in plan.booleans:
            if stored.get(f.name) is None:
                stored[f.name] = 1 if f.default is True else 0
        self._check_record(conn, Change(obj, stored, changed, True, None), {k: stored[k] for k in changed}, options)
        stamp, user = self._stamp_and_user(conn, stamp_ms)
        number = (conn.execute(f'SELECT MAX(rowid) FROM "{obj.name}"').fetchone()[0] or 0) + 1
        record_id = make_id(obj.key_prefix, number, pod="5h")
        while conn.execute(f'SELECT 1 FROM "{obj.name}" WHERE "Id" = ?', (record_id,)).fetchone():
            number += 1
            record_id = make_id(obj.key_prefix, number, pod="5h")
        system = {"Id": record_id, "IsDeleted": 0, "CreatedDate": stamp, "CreatedById": user,
                  "LastModifiedDate": stamp, "LastModifiedById": user, "SystemModstamp": stamp, "OwnerId": user}
        for name, value in system.items():
            if obj.field(name) and (name != "OwnerId" or stored.get("OwnerId") is None):
                stored[name] = value
        if rules.derive:
            rules.derive(conn, stored)
        if obj.field("Name") and obj.field("LastName"):
            stored["Name"] = " ".join(p for p in (stored.get("FirstName"), stored.get("LastName")) if p)
        self._insert_rows(conn, obj.name, [stored])
        return record_id

    def _stamp_and_user(self, conn: sqlite3.Connection, stamp_ms: int | None) -> tuple[int, str]:
        """The time a write is stamped with and the user it is made as: fixed for a whole DML batch."""
        if self._batch_context is not None:
            stamp, user, _ = self._batch_context
            return (stamp if stamp_ms is None else stamp_ms), user
        row = conn.execute('SELECT "Id" FROM "User" WHERE "Username" = ?', (self.settings.username,)).fetchone()
        return (stamp_ms if stamp_ms is not None else self.now_ms()), (row[0] if row else make_id("005", 1))

    def _duplicate_rules(self) -> dict[str, str]:
        return self._batch_context[2] if self._batch_context is not None else self.settings.duplicate_rules

    def _update(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, values: dict[str, Any],
                stamp_ms: int | None, options: WriteOptions = DEFAULT_WRITE, *, system: bool = False,
                missing_code: str = "NOT_FOUND", stored_id: bool = False) -> None:
        """Update one record. `system` is the org itself writing (a conversion): read-only fields and a
        read-only record may be set. `missing_code` is how a missing record is reported (REST: NOT_FOUND)."""
        current = self._live(conn, obj, record_id, missing_code, stored_id=stored_id)
        rules = rules_for(obj.name)
        if rules.read_only_flag and not system and current.get(rules.read_only_flag[0]):
            _, code, message = rules.read_only_flag
            raise SalesforceApiError(400, code, message)
        changes = self._convert_values(obj, self._resolve_foreign_keys(conn, obj, values), creating=False,
                                       system=system)
        cleared = [n for n, v in changes.items()
                   if v is None and not obj.field(n).nillable and obj.field(n).type != "boolean"]
        if cleared:
            raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING",
                                     f"Required fields are missing: [{', '.join(cleared)}]", cleared)
        self._check_record(conn, Change(obj, {**current, **changes}, frozenset(changes), False, current["Id"]),
                           changes, options)
        stamp, user = self._stamp_and_user(conn, stamp_ms)
        changes.update({"LastModifiedDate": stamp, "SystemModstamp": stamp, "LastModifiedById": user})
        if obj.field("Name") and obj.field("LastName") and ({"FirstName", "LastName"} & changes.keys()):
            merged = {**current, **changes}
            changes["Name"] = " ".join(p for p in (merged.get("FirstName"), merged.get("LastName")) if p)
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        conn.execute(f'UPDATE "{obj.name}" SET {sets} WHERE "Id" = ?', (*changes.values(), current["Id"]))
        if rules.after_update:
            rules.after_update(conn, current["Id"], changes)

    def _live(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, missing_code: str, *,
              stored_id: bool = False) -> dict[str, Any]:
        """The stored record a write changes; a missing one is `missing_code` (REST: NOT_FOUND), one in the recycle
        bin ENTITY_IS_DELETED."""
        current = self._stored(conn, obj, record_id, stored_id=stored_id)
        if current is None:
            if missing_code == "NOT_FOUND":
                raise not_found()
            raise SalesforceApiError(404, missing_code, "entity is deleted")
        if current.get("IsDeleted"):
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return current

    def _delete(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, stamp_ms: int | None, *,
                missing_code: str = "NOT_FOUND") -> None:
        current = self._live(conn, obj, record_id, missing_code)
        rules = rules_for(obj.name)
        if not obj.field("IsDeleted") or obj.name == "CampaignMember":
            # Junction objects skip the recycle bin: the row is gone, invisible even to queryAll.
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (current["Id"],))
            return
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        conn.execute(f'UPDATE "{obj.name}" SET "IsDeleted" = 1, "LastModifiedDate" = ?, "SystemModstamp" = ? '
                     'WHERE "Id" = ?', (stamp, stamp, current["Id"]))
        if rules.after_delete:
            rules.after_delete(conn, current["Id"])

    def _upsert(self, conn: sqlite3.Connection, obj: ObjectDef, external_field: str, value: Any,
                values: dict[str, Any], options: WriteOptions = DEFAULT_WRITE) -> tuple[str, bool]:
        f = obj.field(external_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SalesforceApiError(404, "NOT_FOUND",
                                     f"Provided external ID field does not exist or is not accessible: {external_field}")
        if value is None or value == "":
            raise SalesforceApiError(400, "MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
        body = {k: v for k, v in values.items() if k.lower() != f.name.lower()}
        where = ' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""
        lookup = canonical_id(str(value)) if f.name == "Id" else value
        rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE{where}',
                            (lookup,)).fetchall()
        if len(rows) > 1:
            raise SalesforceApiError(300, "MULTIPLE_CHOICES", f"more than one record found for {f.name}={value}")
        if rows:
            self._update(conn, obj, rows[0][0], body, None, options, stored_id=True)
            return rows[0][0], False
        if f.name == "Id":
            raise not_found()
        return self._create(conn, obj, {**body, f.name: value}, None, options), True


def foreign_key(schema: Any, obj: ObjectDef, column: str) -> tuple[FieldDef, ObjectDef, FieldDef]:
    """(reference field, parent object, parent's external id field) a `Relationship[:Type].Field` column names;
    a column that names none is INVALID_FIELD."""
    relationship, _, field_name = column.partition(".")
    relationship, _, target_type = relationship.partition(":")
    ref = obj.relationship(relationship)
    if ref is None:
        raise SalesforceApiError(400, "INVALID_FIELD", f"Field name not found : {column}", [column])
    if target_type and not ref.polymorphic:
        raise SalesforceApiError(400, "INVALID_FIELD", "type is not needed for non polymorphic foreign key "
                                 f"references: {relationship}", [column])
    if not target_type and ref.polymorphic:
        raise SalesforceApiError(400, "INVALID_FIELD", f"type is needed for polymorphic foreign key references: "
                                 f"{relationship}, as {relationship}:{ref.reference_to[0]}.{field_name}", [column])
    target = schema.object(target_type or ref.reference_to[0])
    if target is None or target.name not in ref.reference_to:
        raise SalesforceApiError(400, "INVALID_FIELD", f"Field name not found : {column}", [column])
    target_field = target.field(field_name)
    if target_field is None or not (target_field.external_id or target_field.id_lookup):
        raise SalesforceApiError(400, "INVALID_FIELD", f"Field name not found : {column}", [column])
    return ref, target, target_field


def _payload_id(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        return str(payload.get("Id") or payload.get("id") or "")
    return ""


def row_lock_error(record_id: str) -> SalesforceApiError:
    return SalesforceApiError(400, "UNABLE_TO_LOCK_ROW",
                              f"unable to obtain exclusive access to this record or 1 records: {record_id}")


def check_value(obj: ObjectDef, f: FieldDef, value: Any) -> None:
    """A stored value the field refuses: a malformed id, a bad email, a value outside a restricted picklist."""
    if f.type == "reference" and canonical_id(value) is None:
        raise SalesforceApiError(400, "MALFORMED_ID", f"{field_label(obj, f.name)}: id value of incorrect type: {value}",
                                 [f.name])
    if f.type == "email" and not EMAIL.match(value):
        raise SalesforceApiError(400, "INVALID_EMAIL_ADDRESS", f"{field_label(obj, f.name)}: invalid email address: "
                                 f"{value}", [f.name])
    if f.restricted_picklist and f.picklist:
        chosen = value.split(";") if f.type == "multipicklist" else [value]
        bad = [v for v in chosen if v not in f.picklist]
        if bad:
            raise SalesforceApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                     f"{field_label(obj, f.name)}: bad value for restricted picklist field: {bad[0]}",
                                     [f.name])


def to_storage(f: FieldDef, value: Any) -> Any:
    """An API-form value (JSON or CSV text) in the org's storage form; a bad value is Salesforce's error."""
    if value is None or value == "":
        return None
    storage = f.storage
    try:
        if storage == "text":
            if isinstance(value, list):
                value = ";".join(value)
            if not isinstance(value, str):
                value = str(value)
            if f.type in ("id", "reference"):
                return canonical_id(value) or value
            if f.length and len(value) > f.length:
                raise SalesforceApiError(400, "STRING_TOO_LONG",
                                         f"{f.label or label_for(f.name)}: data value too large: {value[:40]} "
                                         f"(max length={f.length})", [f.name])
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
