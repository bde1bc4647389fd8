"""Bulk API 2.0: query jobs (query and queryAll, CSV results paged by locator) and ingest jobs (CSV
upload, UploadComplete, successful/failed/unprocessed results)."""

from __future__ import annotations

import base64
import csv
import functools
import io
import itertools
from dataclasses import dataclass, field
from typing import Any

from salesforce_sync.emulator import render
from salesforce_sync.emulator.errors import SalesforceApiError, bulk_error_cell, not_found
from salesforce_sync.emulator.ids import KEY_PREFIXES, make_id
from salesforce_sync.emulator.clock import ms_to_iso
from salesforce_sync.emulator.render import COLUMN_DELIMITERS as DELIMITERS
from salesforce_sync.emulator.render import LINE_ENDINGS
from salesforce_sync.emulator.records import WriteOptions, foreign_key
from salesforce_sync.emulator.rest import QueryCursor, fetch_page, run_query
from salesforce_sync.emulator.schema import ObjectDef, OrgSchema
from salesforce_sync.emulator.core import DATA, Request, Response, Router

DEFAULT_MAX_RECORDS = 100_000
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
INGEST_BATCH_ROWS = 10_000  # Salesforce cuts ingest data into batches of this many records
NULL_CELL = "#N/A"  # a cell that sets the field to null (an empty cell leaves it unchanged)
_job_numbers = itertools.count(1)


@dataclass
class Job:
    """A Bulk 2.0 job held by the serving process."""

    info: dict[str, Any]
    cursor: QueryCursor | None = None
    uploaded: bytearray = field(default_factory=bytearray)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    polled: bool = False


def register(router: Router) -> None:
    add = router.add
    add("POST", DATA + r"/jobs/query", "bulk2.query.create")(create_query_job)
    add("GET", DATA + r"/jobs/query", "bulk2.query.list")(list_query_jobs)
    add("GET", DATA + r"/jobs/query/(?P<job>750\w+)", "bulk2.query.status")(query_job_status)
    add("PATCH", DATA + r"/jobs/query/(?P<job>750\w+)", "bulk2.query.abort")(abort_job)
    add("DELETE", DATA + r"/jobs/query/(?P<job>750\w+)", "bulk2.query.delete")(delete_job)
    add("GET", DATA + r"/jobs/query/(?P<job>750\w+)/results", "bulk2.query.results")(query_results)
    add("POST", DATA + r"/jobs/ingest", "bulk2.ingest.create")(create_ingest_job)
    add("PUT", DATA + r"/jobs/ingest/(?P<job>750\w+)/batches", "bulk2.ingest.upload")(upload_batch)
    add("PATCH", DATA + r"/jobs/ingest/(?P<job>750\w+)", "bulk2.ingest.state")(ingest_state)
    add("GET", DATA + r"/jobs/ingest/(?P<job>750\w+)", "bulk2.ingest.status")(ingest_status)
    add("DELETE", DATA + r"/jobs/ingest/(?P<job>750\w+)", "bulk2.ingest.delete")(delete_job)
    add("GET", DATA + r"/jobs/ingest/(?P<job>750\w+)/(?P<kind>successfulResults|failedResults|unprocessedrecords)",
        "bulk2.ingest.results")(ingest_results)


def _job_info(request: Request, operation: str, object_name: str, body: dict[str, Any], job_type: str) -> dict[str, Any]:
    now = ms_to_iso(request.org.now_ms())
    return {
        "id": make_id(KEY_PREFIXES["BulkJob"], next(_job_numbers), pod="5g"), "operation": operation,
        "object": object_name, "createdById": request.org.integration_user_id, "createdDate": now,
        "systemModstamp": now, "state": "UploadComplete" if job_type == "V2Query" else "Open",
        "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(request.version),
        "jobType": job_type, "lineEnding": body.get("lineEnding", "LF"),
        "columnDelimiter": body.get("columnDelimiter", "COMMA"),
    }


def _check_format(body: dict[str, Any]) -> None:
    if body.get("columnDelimiter", "COMMA") not in DELIMITERS:
        raise SalesforceApiError(400, "INVALIDJOB", f"Invalid column delimiter: {body.get('columnDelimiter')}")
    if body.get("lineEnding", "LF") not in LINE_ENDINGS:
        raise SalesforceApiError(400, "INVALIDJOB", f"Invalid line ending: {body.get('lineEnding')}")
    if body.get("contentType", "CSV") != "CSV":
        raise SalesforceApiError(400, "INVALIDJOB", f"Invalid content type: {body.get('contentType')}")


def _job(request: Request, job_type: str) -> Job:
    with request.server.state_lock:
        job = request.server.jobs.get(request.params["job"])
    if job is None or job.info["jobType"] != job_type:
        raise not_found()
    return job


# ---- query jobs ---------------------------------------------------------------------------------------

def create_query_job(request: Request) -> Response:
    body = request.json() or {}
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise SalesforceApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    if not body.get("query"):
        raise SalesforceApiError(400, "INVALIDJOB", "The query is required")
    _check_format(body)
    cursor = run_query(request, body["query"], include_deleted=operation == "queryAll")
    reason = cursor.compiled.bulk_unsupported_reason()
    if reason:
        raise SalesforceApiError(400, "API_ERROR", reason)
    job = Job(_job_info(request, operation, cursor.compiled.object_name, body, "V2Query"), cursor=cursor)
    with request.server.state_lock:
        request.server.jobs[job.info["id"]] = job
    created = {k: v for k, v in job.info.items() if k != "jobType"}
    failure = request.org.take_job_failure(job.info["object"], "V2Query")
    if failure:  # accepted, then fails while running
        job.info.update({"state": "Failed", "errorMessage": failure})
    return Response.json(created)


def _query_status(request: Request, job: Job) -> dict[str, Any]:
    info = dict(job.info)
    if info["jobType"] == "V2Query":
        if info["state"] == "UploadComplete":
            info["state"] = job.info["state"] = "JobComplete"
        info.update({"numberRecordsProcessed": len(job.cursor.rowids) if job.cursor else 0, "retries": 0,
                     "totalProcessingTime": 12, "isPkChunkingSupported": True})
    return info


def list_query_jobs(request: Request) -> Response:
    with request.server.state_lock:
        jobs = [j for j in request.server.jobs.values() if j.info["jobType"] == "V2Query"]
    return Response.json({"done": True, "records": [_query_status(request, j) for j in jobs], "nextRecordsUrl": None})


def query_job_status(request: Request) -> Response:
    return Response.json(_query_status(request, _job(request, "V2Query")))


def abort_job(request: Request) -> Response:
    job = _job(request, "V2Query")
    if (request.json() or {}).get("state") != "Aborted":
        raise SalesforceApiError(400, "INVALIDJOBSTATE", "Only Aborted is a valid state change for a query job")
    if job.info["state"] in ("JobComplete", "Failed"):
        raise SalesforceApiError(400, "INVALIDJOBSTATE", f"Job is already {job.info['state']}")
    job.info["state"] = "Aborted"
    return Response.json(_query_status(request, job))


def delete_job(request: Request) -> Response:
    with request.server.state_lock:
        if request.server.jobs.pop(request.params["job"], None) is None:
            raise not_found()
    return Response.empty(204)


def query_results(request: Request) -> Response:
    job = _job(request, "V2Query")
    if job.info["state"] not in ("JobComplete", "UploadComplete"):
        raise SalesforceApiError(400, "JOB_NOT_COMPLETE",
                                 f"can only download query results of successfully completed bulk job {job.info['id']}")
    job.info["state"] = "JobComplete"
    try:
        offset = int(base64.b64decode(request.query.get("locator") or "MA==").decode())
        max_records = int(request.query.get("maxRecords") or DEFAULT_MAX_RECORDS)
    except ValueError:
        raise SalesforceApiError(400, "INVALID_LOCATOR", "Invalid locator") from None
    total = len(job.cursor.rowids)
    if offset < 0 or offset > total or max_records < 1:
        raise SalesforceApiError(400, "INVALID_LOCATOR", "Invalid locator")
    stop = min(total, offset + max_records)
    following = min(total, stop + max_records)
    renderer = render.CsvRenderer(job.cursor.compiled, job.info["columnDelimiter"], job.info["lineEnding"])

    def chunk(start: int, end: int) -> tuple[bytes, int]:
        rows = fetch_page(request.org, job.cursor, start, end)
        return renderer.chunk(rows), len(rows)

    body, count = job.cursor.page(
        request.org, request.server.ahead, (offset, stop), functools.partial(chunk, offset, stop),
        ((stop, following), functools.partial(chunk, stop, following)) if stop < total else None)
    locator = base64.b64encode(str(stop).encode()).decode() if stop < total else "null"
    return Response(200, body, {"Content-Type": "text/csv", "Sforce-NumberOfRecords": str(count),
                                "Sforce-Locator": locator})


# ---- ingest jobs --------------------------------------------------------------------------------------

def create_ingest_job(request: Request) -> Response:
    body = request.json() or {}
    operation = body.get("operation")
    if operation not in INGEST_OPERATIONS:
        raise SalesforceApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    _check_format(body)
    obj = request.org.object(body.get("object") or "")
    info = _job_info(request, operation, obj.name, body, "V2Ingest")
    info["contentUrl"] = f"services/data/v{request.version}/jobs/ingest/{info['id']}/batches"
    if operation == "upsert":
        info["externalIdFieldName"] = body.get("externalIdFieldName") or "Id"
    job = Job(info)
    with request.server.state_lock:
        request.server.jobs[info["id"]] = job
    return Response.json(info)


def upload_batch(request: Request) -> Response:
    job = _job(request, "V2Ingest")
    if job.info["state"] != "Open":
        raise SalesforceApiError(400, "INVALIDJOBSTATE", f"Job {job.info['id']} is not open for uploads")
    job.uploaded += request.body
    return Response.empty(201)


def _ingest_status(job: Job) -> dict[str, Any]:
    info = dict(job.info)
    info.update({"numberRecordsProcessed": len(job.successful) + len(job.failed),
                 "numberRecordsFailed": len(job.failed), "retries": 0, "totalProcessingTime": 20,
                 "apiActiveProcessingTime": 10, "apexProcessingTime": 0})
    return info


def ingest_status(request: Request) -> Response:
    return Response.json(_ingest_status(_job(request, "V2Ingest")))


def ingest_state(request: Request) -> Response:
    job = _job(request, "V2Ingest")
    state = (request.json() or {}).get("state")
    if state == "Aborted" and job.info["state"] in ("Open", "UploadComplete"):
        job.header, job.unprocessed = _parse_upload(job)
        job.info["state"] = "Aborted"
    elif state == "UploadComplete" and job.info["state"] == "Open":
        job.info["state"] = "UploadComplete"
        accepted = _ingest_status(job)  # the answer shows the job queued; a poll then finds it done
        _process_ingest(request, job)
        return Response.json(accepted)
    else:
        raise SalesforceApiError(400, "INVALIDJOBSTATE", f"Cannot change the state of job {job.info['id']} to {state}")
    return Response.json(_ingest_status(job))


def _parse_upload(job: Job) -> tuple[list[str], list[list[str]]]:
    text = job.uploaded.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text), delimiter=DELIMITERS[job.info["columnDelimiter"]])
    rows = [row for row in reader if row]
    return (rows[0], rows[1:]) if rows else ([], [])


def _fail_job(job: Job, rows: list[list[str]], message: str) -> None:
    """The job ends Failed: nothing of it is processed, every row is in unprocessedrecords."""
    job.info.update({"state": "Failed", "errorMessage": message})
    job.unprocessed = rows


def _header_problem(schema: OrgSchema, obj: ObjectDef, operation: str, header: list[str],
                    external_field: str | None) -> str | None:
    """Why the CSV header fails the whole job, in Salesforce's words; None when it is fine."""
    for name in header:
        if "." in name:
            try:
                foreign_key(schema, obj, name)
            except SalesforceApiError as err:
                return f"InvalidBatch : {err.message}"
            continue
        f = obj.field(name)
        if f is None or f.storage is None:
            return f"InvalidBatch : Field name not found : {name}"
    names = {n.lower() for n in header}
    if operation in ("delete", "hardDelete") and names != {"id"}:
        return "InvalidBatch : A delete file may only contain the Id column"
    if operation == "update" and "id" not in names:
        return "InvalidBatch : Field name not found : Id"
    if operation == "upsert" and external_field and external_field.lower() not in names:
        return f"InvalidBatch : Field name provided, {external_field} does not match an External ID, Salesforce Id, " \
               f"or indexed field for {obj.name}"
    return None


def _row_values(header: list[str], row: list[str]) -> dict[str, Any]:
    """A CSV row as API values: an empty cell leaves the field as it is, `#N/A` sets it to null."""
    return {name: (None if value == NULL_CELL else value) for name, value in zip(header, row) if value != ""}


def _process_ingest(request: Request, job: Job) -> None:
    """Run the job's rows in batches of 10,000, each its own transaction and a DailyBulkApiBatches unit."""
    header, rows = _parse_upload(job)
    job.header = header
    operation, obj = job.info["operation"], request.org.object(job.info["object"])
    failure = request.org.take_job_failure(obj.name, "V2Ingest") or \
        _header_problem(request.org.schema, obj, operation, header, job.info.get("externalIdFieldName"))
    if failure:
        _fail_job(job, rows, failure)
        return
    job.info["state"] = "InProgress"
    options = WriteOptions(api_version=request.version or WriteOptions.api_version)
    for start in range(0, len(rows), INGEST_BATCH_ROWS):
        batch = rows[start:start + INGEST_BATCH_ROWS]
        ops: list[tuple[str, str, Any]] = []
        for row in batch:
            values = _row_values(header, row)
            if operation in ("delete", "hardDelete"):
                ops.append((operation, obj.name, values.get("Id") or ""))
            elif operation == "upsert":
                ops.append(("upsert", obj.name, (job.info["externalIdFieldName"], values)))
            else:
                ops.append(("create" if operation == "insert" else "update", obj.name, values))
        request.org.count_bulk_batches(1)
        results = request.org.apply_dml(ops, all_or_none=False, options=options)
        for row, (_, _, payload), result in zip(batch, ops, results):
            if result["success"]:
                created = result.get("created", operation == "insert")
                job.successful.append([result["id"], "true" if created else "false", *row])
            else:
                known_id = payload if isinstance(payload, str) else (payload.get("Id") if isinstance(payload, dict) else "")
                job.failed.append([known_id or "", bulk_error_cell(result["errors"][0]), *row])
    job.info["state"] = "JobComplete"


def ingest_results(request: Request) -> Response:
    job = _job(request, "V2Ingest")
    kind = request.params["kind"].lower()
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    if kind == "successfulresults":
        out.write(",".join(['"sf__Id"', '"sf__Created"', *job.header]) + "\n")
        writer.writerows(job.successful)
    elif kind == "failedresults":
        out.write(",".join(['"sf__Id"', '"sf__Error"', *job.header]) + "\n")
        writer.writerows(job.failed)
    else:
        out.write(",".join(job.header) + "\n")
        writer.writerows(job.unprocessed)
    return Response(200, out.getvalue().encode(), {"Content-Type": "text/csv"})
