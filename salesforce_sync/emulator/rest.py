"""REST API handlers: versions, resources, limits, describe, query/queryAll with paging, record CRUD,
upsert by external id, getUpdated/getDeleted and sObject Collections."""

from __future__ import annotations

import functools
import itertools
import json
import re
import sqlite3
from array import array
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from salesforce_sync.emulator import render
from salesforce_sync.emulator.errors import SalesforceApiError, not_found
from salesforce_sync.emulator.ids import KEY_PREFIXES, OBJECT_BY_PREFIX, make_id
from salesforce_sync.emulator.clock import iso_to_ms, ms_to_iso
from salesforce_sync.emulator.org import Org
from salesforce_sync.emulator.records import WriteOptions
from salesforce_sync.emulator.core import API_VERSIONS, DATA, Handler, Request, Response, Router, json_bytes
from salesforce_sync.emulator.soql import CompiledQuery, SoqlError, compile_query

RELEASE_NAMES = ("Winter", "Spring", "Summer")
LOCATOR_IDLE_MS = 15 * 60 * 1000
MAX_OPEN_LOCATORS = 50
COLLECTION_LIMIT = 200
MAX_AGGREGATE_ROWS = 2000
_TOO_COMPLICATED = re.compile(r"too large|too many|too deep|stack overflow|at most \d+ tables")
_locator_numbers = itertools.count(1)
T = TypeVar("T")


def register(router: Router) -> None:
    add = router.add
    sobject = DATA + r"/sobjects/(?P<object>\w+)"
    collection = DATA + r"/composite/sobjects"
    add("GET", r"/services/data", "versions", api=False)(versions)
    add("GET", DATA, "resources")(resources)
    add("GET", DATA + r"/limits", "limits")(limits)
    add("GET", DATA + r"/sobjects", "sobjects.describeGlobal")(describe_global)
    add("GET", sobject, "sobjects.metadata")(_known_object(sobject_metadata))
    add("POST", sobject, "sobjects.create")(_known_object(create_record))
    add("GET", sobject + r"/describe", "sobjects.describe")(_known_object(describe))
    add("GET", sobject + r"/updated", "sobjects.updated")(_known_object(get_updated))
    add("GET", sobject + r"/deleted", "sobjects.deleted")(_known_object(get_deleted))
    add("GET", sobject + r"/(?P<id>\w+)", "sobjects.read")(_known_object(read_record))
    add("PATCH", sobject + r"/(?P<id>\w+)", "sobjects.update")(_known_object(update_record))
    add("DELETE", sobject + r"/(?P<id>\w+)", "sobjects.delete")(_known_object(delete_record))
    add("GET", sobject + r"/(?P<field>\w+)/(?P<value>[^/]+)", "sobjects.readByExternalId")(
        _known_object(read_by_external_id))
    add("PATCH", sobject + r"/(?P<field>\w+)/(?P<value>[^/]+)", "sobjects.upsert")(_known_object(upsert_record))
    add("GET", DATA + r"/(?P<kind>query|queryAll)", "query")(query)
    add("GET", DATA + r"/(?:query|queryAll)/(?P<locator>01g\w+-\d+)", "queryMore")(query_more)
    add("POST", collection, "composite.create")(collection_create)
    add("PATCH", collection, "composite.update")(collection_update)
    add("DELETE", collection, "composite.delete")(collection_delete)
    add("GET", collection + r"/(?P<object>\w+)", "composite.retrieve")(_known_object(collection_retrieve))
    add("PATCH", collection + r"/(?P<object>\w+)/(?P<field>\w+)", "composite.upsert")(
        _known_object(collection_upsert))


def _known_object(handler: Handler) -> Handler:
    """An unknown sObject named in the URL is 404 NOT_FOUND, as Salesforce answers (INVALID_TYPE is SOQL's)."""
    @functools.wraps(handler)
    def checked(request: Request) -> Response:
        if request.org.schema.object(request.params["object"]) is None:
            raise not_found()
        return handler(request)
    return checked


# ---- discovery -------------------------------------------------------------------------------------

def versions(request: Request) -> Response:
    out = []
    for version in API_VERSIONS:
        # v31.0 was Summer '14, then three releases a year: Winter '15 (v32.0), Spring, Summer, ...
        releases_since_winter_14 = int(float(version)) - 31 + 2
        season = RELEASE_NAMES[releases_since_winter_14 % 3]
        year = 14 + releases_since_winter_14 // 3
        out.append({"label": f"{season} '{year:02d}", "url": f"/services/data/v{version}", "version": version})
    return Response.json(out)


def resources(request: Request) -> Response:
    base = f"/services/data/v{request.version}"
    names = ("sobjects", "query", "queryAll", "search", "limits", "composite", "jobs", "tooling", "recent")
    payload = {name: f"{base}/{name}" for name in names}
    settings = request.org.settings
    payload["identity"] = f"{request.server.base_url}/id/{settings.org_id}/{request.org.integration_user_id}"
    return Response.json(payload)


def limits(request: Request) -> Response:
    used, maximum = request.org.api_usage()
    calls = request.org.api_calls()
    bulk_jobs = sum(n for name, n in calls.items() if name == "bulk2.query.create")
    bulk_batches = request.org.bulk_batches()

    def entry(limit: int, used_now: int) -> dict[str, int]:
        return {"Max": limit, "Remaining": max(0, limit - used_now)}

    return Response.json({
        "DailyApiRequests": entry(maximum, used),
        "DailyBulkApiBatches": entry(15000, bulk_batches),
        "DailyBulkApiRequests": entry(15000, bulk_batches),
        "DailyBulkV2QueryFileStorageMB": entry(976562, 0),
        "DailyBulkV2QueryJobs": entry(10000, bulk_jobs),
        "DailyAsyncApexExecutions": entry(250000, 0),
        "DataStorageMB": entry(1024, 0),
        "FileStorageMB": entry(1024, 0),
        "ConcurrentAsyncGetReportInstances": entry(200, 0),
        "SingleEmail": entry(15, 0),
    })


def describe_global(request: Request) -> Response:
    schema = request.org.schema
    return Response.json({"encoding": "UTF-8", "maxBatchSize": 200,
                          "sobjects": [o.global_entry(request.version) for o in schema.objects.values()]})


def sobject_metadata(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    return Response.json({"objectDescribe": obj.global_entry(request.version), "recentItems": []})


def describe(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    return Response.json(obj.describe(request.version, request.org.schema.child_relationships(obj.name)))


# ---- query ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Ahead:
    """A page being rendered in the background, valid while the org's records_version stays `version`."""

    key: Hashable
    version: tuple[int, int]
    result: Future[Any]


@dataclass
class QueryCursor:
    """A server-side snapshot of a query's matching rows, paged by `nextRecordsUrl` or Bulk locators; an
    aggregate query's rows themselves, one per group, which come back in one response."""

    compiled: CompiledQuery
    rowids: array
    last_used_ms: int
    ahead: _Ahead | None = None
    aggregate_rows: list[tuple] = field(default_factory=list)

    def page(self, org: Org, executor: Executor, key: Hashable, render: Callable[[], T],
             next_page: tuple[Hashable, Callable[[], T]] | None) -> T:
        """What `render` makes for the page `key`: the page rendered ahead if it is this one and no record has
        changed since, else rendered now. Then `next_page` starts rendering while the client reads this one,
        so paging costs the slower of server and client rather than both."""
        ahead, self.ahead = self.ahead, None
        result: Any = _NOTHING
        if ahead is not None:
            if ahead.key == key and ahead.version == org.records_version():
                try:
                    result = ahead.result.result()
                except Exception:  # noqa: BLE001 - rendered again below, where the error reaches the client
                    result = _NOTHING
            else:
                ahead.result.cancel()
        if result is _NOTHING:
            result = render()
        if next_page is not None:
            next_key, render_next = next_page
            version = org.records_version()
            try:
                self.ahead = _Ahead(next_key, version, executor.submit(render_next))
            except RuntimeError:  # the server is shutting down
                self.ahead = None
        return result


_NOTHING = object()


def run_query(request: Request, soql: str, *, include_deleted: bool) -> QueryCursor:
    """Compile and run a SOQL query, snapshotting the ordered row ids of its result."""
    org = request.org
    try:
        compiled = compile_query(soql, org.schema, include_deleted=include_deleted, now=org.now())
    except SoqlError as err:
        raise SalesforceApiError(400, err.error_code, err.message) from None
    try:
        with org.read() as conn:
            if compiled.aggregate:
                rows = conn.execute(compiled.aggregate_sql, compiled.aggregate_params).fetchall()
                return QueryCursor(compiled, array("q"), org.now_ms(), aggregate_rows=rows)
            rowids = array("q", (row[0] for row in conn.execute(compiled.ids_sql, compiled.params)))
    except sqlite3.OperationalError as err:  # e.g. "parser stack overflow" for conditions nested hundreds deep
        if not _TOO_COMPLICATED.search(str(err)):
            raise
        raise SalesforceApiError(400, "QUERY_TOO_COMPLICATED", f"Query is too complicated ({err})") from None
    return QueryCursor(compiled, rowids, org.now_ms())


def fetch_page(org: Org, cursor: QueryCursor, start: int, stop: int) -> list[tuple]:
    ids = cursor.rowids[start:stop]
    if not ids:
        return []
    with org.read() as conn:
        return conn.execute(cursor.compiled.page_sql, (json.dumps(ids.tolist()),)).fetchall()


def _batch_size(request: Request) -> int:
    options = request.headers.get("Sforce-Query-Options", "")
    m = re.search(r"batchSize\s*=\s*(\d+)", options)
    return min(2000, max(200, int(m.group(1)))) if m else 2000


def _query_page(request: Request, cursor: QueryCursor, locator: str, start: int) -> Response:
    compiled = cursor.compiled
    total = len(cursor.rowids)
    if compiled.count_only:
        return Response.json({"totalSize": total, "done": True, "records": []})
    if compiled.aggregate:
        rows = cursor.aggregate_rows
        if len(rows) > MAX_AGGREGATE_ROWS:  # aggregate results have no locator: all of them come in one response
            raise SalesforceApiError(400, "EXCEEDED_ID_LIMIT", "Aggregate query does not support queryMore(), use "
                                                               "LIMIT to restrict the results to a single batch")
        return Response.json({"totalSize": len(rows), "done": True,
                              "records": render.aggregate_records(compiled, rows)})
    size = _batch_size(request)
    stop = min(total, start + size)
    org, version = request.org, request.version
    following = min(total, stop + size)
    body = cursor.page(
        org, request.server.ahead, (start, stop, version),
        functools.partial(_page_body, org, cursor, version, locator, start, stop),
        ((stop, following, version), functools.partial(_page_body, org, cursor, version, locator, stop, following))
        if stop < total else None)
    with request.server.state_lock:
        if stop < total:
            _forget_stale_locators(request)
            request.server.locators[locator] = cursor
        else:
            request.server.locators.pop(locator, None)
    cursor.last_used_ms = org.now_ms()
    return Response.json_body(body)


def _page_body(org: Org, cursor: QueryCursor, version: str, locator: str, start: int, stop: int) -> bytes:
    """One query page's JSON: records [start, stop) of the cursor, and the locator of the rest."""
    total = len(cursor.rowids)
    head: dict[str, Any] = {"totalSize": total, "done": stop >= total}
    if stop < total:
        head["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{stop}"
    records = render.RestRenderer(cursor.compiled, version).json_records(fetch_page(org, cursor, start, stop))
    return json_bytes(head)[:-1] + b',"records":' + records.encode() + b"}"


def _forget_stale_locators(request: Request) -> None:
    now = request.org.now_ms()
    locators = request.server.locators
    for key in [k for k, c in locators.items() if now - c.last_used_ms > LOCATOR_IDLE_MS]:
        del locators[key]
    while len(locators) >= MAX_OPEN_LOCATORS:
        del locators[next(iter(locators))]


def query(request: Request) -> Response:
    soql = request.query.get("q")
    if not soql:
        raise SalesforceApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    cursor = run_query(request, soql, include_deleted=request.params["kind"] == "queryAll")
    locator = make_id(KEY_PREFIXES["QueryLocator"], next(_locator_numbers), pod="RO")
    return _query_page(request, cursor, locator, 0)


def query_more(request: Request) -> Response:
    locator, _, offset = request.params["locator"].rpartition("-")
    with request.server.state_lock:
        cursor = request.server.locators.get(locator)
    if cursor is None or request.org.now_ms() - cursor.last_used_ms > LOCATOR_IDLE_MS \
            or int(offset) > len(cursor.rowids):
        raise SalesforceApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _query_page(request, cursor, locator, int(offset))


# ---- records ----------------------------------------------------------------------------------------

def _record_soql(request: Request, object_name: str, where: str) -> QueryCursor:
    obj = request.org.object(object_name)
    requested = request.query.get("fields")
    names = [n.strip() for n in requested.split(",")] if requested else [f.name for f in obj.fields]
    return run_query(request, f"SELECT {', '.join(names)} FROM {obj.name} WHERE {where}", include_deleted=True)


def _single_record(request: Request, cursor: QueryCursor) -> Response:
    rows = fetch_page(request.org, cursor, 0, 2)
    if not rows:
        raise not_found()
    return Response.json(render.RestRenderer(cursor.compiled, request.version).records(rows)[0])


def read_record(request: Request) -> Response:
    record_id = request.params["id"]
    if len(record_id) not in (15, 18):
        raise not_found()
    stored = request.org.get_stored(request.params["object"], record_id)
    if stored is None or stored.get("IsDeleted"):
        raise not_found()
    return _single_record(request, _record_soql(request, request.params["object"], f"Id = '{stored['Id']}'"))


def read_by_external_id(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    field = obj.field(request.params["field"])
    if field is None or not (field.external_id or field.id_lookup):
        raise SalesforceApiError(404, "NOT_FOUND", "Provided external ID field does not exist or is not "
                                                   f"accessible: {request.params['field']}")
    ids = request.org.find_ids(obj.name, field.name, request.params["value"])
    if not ids:
        raise not_found()
    if len(ids) > 1:
        return Response.json([f"/services/data/v{request.version}/sobjects/{obj.name}/{i}" for i in ids], 300)
    return _single_record(request, _record_soql(request, obj.name, f"Id = '{ids[0]}'"))


def write_options(request: Request) -> WriteOptions:
    """What the request's headers say about its writes (`Sforce-Duplicate-Rule-Header: allowSave=true`)."""
    header = request.headers.get("Sforce-Duplicate-Rule-Header", "")
    allow_save = bool(re.search(r"allowSave\s*=\s*true", header, re.IGNORECASE))
    return WriteOptions(allow_save=allow_save, api_version=request.version or WriteOptions.api_version)


def _record_body(request: Request) -> dict[str, Any]:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object")
    return body


def create_record(request: Request) -> Response:
    record_id = request.org.create(request.params["object"], _record_body(request), options=write_options(request))
    return Response.json({"id": record_id, "success": True, "errors": []}, 201)


def update_record(request: Request) -> Response:
    request.org.update(request.params["object"], request.params["id"], _record_body(request),
                       options=write_options(request))
    return Response.empty(204)


def delete_record(request: Request) -> Response:
    request.org.delete(request.params["object"], request.params["id"])
    return Response.empty(204)


def upsert_record(request: Request) -> Response:
    record_id, created = request.org.upsert(request.params["object"], request.params["field"],
                                            request.params["value"], _record_body(request),
                                            options=write_options(request))
    body = {"id": record_id, "success": True, "errors": [], "created": created}
    if float(request.version) < 46:
        return Response.empty(201 if created else 204)
    return Response.json(body, 201 if created else 200)


def _replication_range(request: Request) -> tuple[int, int]:
    start = iso_to_ms(request.query.get("start", ""))
    end = iso_to_ms(request.query.get("end", ""))
    if start is None or end is None:
        raise SalesforceApiError(400, "MALFORMED_QUERY", "start and end must be ISO 8601 datetimes")
    minute = 60_000
    start, end = start - start % minute, end - end % minute
    now = request.org.now_ms()
    if start >= end:
        raise SalesforceApiError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
    if start < now - 30 * 24 * 3600 * 1000:
        raise SalesforceApiError(400, "INVALID_REPLICATION_DATE",
                                 "startDate cannot be more than 30 days ago")
    return start, min(end, now - now % minute)


def get_updated(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    start, end = _replication_range(request)
    deleted = ' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""
    with request.org.read() as conn:
        rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "SystemModstamp" >= ? AND "SystemModstamp" < ?'
                            f'{deleted} ORDER BY "SystemModstamp"', (start, end)).fetchall()
    if len(rows) > 600_000:
        raise SalesforceApiError(400, "EXCEEDED_ID_LIMIT", "too many ids")
    return Response.json({"ids": [r[0] for r in rows], "latestDateCovered": ms_to_iso(end)})


def get_deleted(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    start, end = _replication_range(request)
    rows: list[tuple] = []
    if obj.field("IsDeleted"):
        with request.org.read() as conn:
            rows = conn.execute(f'SELECT "Id", "SystemModstamp" FROM "{obj.name}" WHERE "IsDeleted" = 1 '
                                'AND "SystemModstamp" >= ? AND "SystemModstamp" < ? ORDER BY "SystemModstamp"',
                                (start, end)).fetchall()
    now = request.org.now_ms()
    return Response.json({
        "deletedRecords": [{"id": rid, "deletedDate": ms_to_iso(stamp)} for rid, stamp in rows],
        "earliestDateAvailable": ms_to_iso(now - now % 60_000 - 30 * 24 * 3600 * 1000),
        "latestDateCovered": ms_to_iso(end),
    })


# ---- sObject Collections -----------------------------------------------------------------------------

def _collection_records(request: Request, *, with_id: bool | None) -> tuple[list[dict[str, Any]], bool]:
    """The records of a Collections request, and allOrNone. `with_id`: True = every record needs an id (update),
    False = none may have one (create, upsert), None = either."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "The request body must contain a records array")
    records = body["records"]
    if len(records) > COLLECTION_LIMIT:
        raise SalesforceApiError(400, "EXCEEDED_ID_LIMIT",
                                 "record limit reached. cannot submit more than 200 records into this call")
    for record in records:
        if not isinstance(record, dict) or not (record.get("attributes") or {}).get("type"):
            raise SalesforceApiError(400, "INVALID_FIELD", "No type specified in the attributes of a record")
        has_id = bool(record.get("id") or record.get("Id"))
        if with_id is False and has_id:
            raise SalesforceApiError(400, "INVALID_FIELD", "Record ids are not accepted in this call: "
                                     f"{record.get('id') or record.get('Id')}")
    return records, bool(body.get("allOrNone"))


def _without_attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}


def _apply(request: Request, ops: list[tuple[str, str, Any]], all_or_none: bool) -> Response:
    """Collections answer 200 with one result per record in input order, whatever failed."""
    return Response.json(request.org.apply_dml(ops, all_or_none=all_or_none, options=write_options(request)))


def collection_create(request: Request) -> Response:
    records, all_or_none = _collection_records(request, with_id=False)
    return _apply(request, [("create", r["attributes"]["type"], _without_attributes(r)) for r in records], all_or_none)


def collection_update(request: Request) -> Response:
    records, all_or_none = _collection_records(request, with_id=None)
    return _apply(request, [("update", r["attributes"]["type"], _without_attributes(r)) for r in records], all_or_none)


def collection_upsert(request: Request) -> Response:
    records, all_or_none = _collection_records(request, with_id=False)
    obj, field = request.org.object(request.params["object"]), request.params["field"]
    for record in records:
        if record["attributes"]["type"].lower() != obj.name.lower():
            raise SalesforceApiError(400, "INVALID_FIELD", f"Every record of this upsert must be a {obj.name}, not "
                                     f"{record['attributes']['type']}")
    return _apply(request, [("upsert", obj.name, (field, _without_attributes(r))) for r in records], all_or_none)


def _id_list(request: Request) -> list[str]:
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    if len(ids) > COLLECTION_LIMIT:
        raise SalesforceApiError(400, "EXCEEDED_ID_LIMIT",
                                 "record limit reached. cannot submit more than 200 records into this call")
    return ids


def collection_delete(request: Request) -> Response:
    ops = [("delete", OBJECT_BY_PREFIX.get(i[:3], ""), i) for i in _id_list(request)]
    return _apply(request, ops, request.query.get("allOrNone", "").lower() == "true")


def collection_retrieve(request: Request) -> Response:
    obj = request.org.object(request.params["object"])
    ids = _id_list(request)
    if not request.query.get("fields"):
        raise SalesforceApiError(400, "MALFORMED_QUERY", "The fields parameter is required")
    quoted = ", ".join("'" + i.replace("'", "") + "'" for i in ids)
    live = " AND IsDeleted = false" if obj.field("IsDeleted") else ""
    cursor = _record_soql(request, obj.name, f"Id IN ({quoted}){live}")
    records = render.RestRenderer(cursor.compiled, request.version).records(
        fetch_page(request.org, cursor, 0, len(cursor.rowids)))
    by_id = {r["attributes"]["url"].rsplit("/", 1)[-1][:15].lower(): r for r in records}
    return Response.json([by_id.get(i[:15].lower()) for i in ids])


