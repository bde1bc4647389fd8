"""Writing records to an org: insert, update and upsert through sObject Collections (small sets) or Bulk API 2.0
ingest (large ones), with one result per input record in input order, and the look-ups a write-back matches by.

Every request goes through `SalesforceClient` (session, 401 refresh, transient retries, API-call count) and
names us in `Sforce-Call-Options: client=<name>`, so the change events of our own writes carry that client in
their changeOrigin and can be told from the org's own changes. Salesforce's error shapes (Collections items,
REST error lists, Bulk `sf__Error` cells) all become one `RecordError`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote_plus

import requests
from simple_salesforce import format_soql

from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.retries import SalesforceRequestError, transient_cause

Operation = Literal["insert", "update", "upsert"]
OPERATIONS = ("insert", "update", "upsert")
COLLECTION_SIZE = 200  # records per sObject Collections call
BULK_NULL = "#N/A"  # a Bulk CSV cell that sets the field to null; an empty cell leaves it unchanged
MAX_JOB_BYTES = 50_000_000  # CSV per ingest job: under Salesforce's advised 100 MB, and what one job holds in memory
MAX_QUERY_URL_CHARS = 15_000  # a REST query travels in the URL, which Salesforce refuses (414) beyond ~16 KB

#: The per-record errors worth sending the record again (after a wait): locks held by another transaction, the
#: platform busy or down, a rolled-back all-or-none batch. Our own codes for a whole request that failed
#: transiently after the client's retries are here too. Anything else is the record's data or the org's setup.
RETRYABLE_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "CONNECTION_LOST", "HTTP_429", "HTTP_500", "HTTP_502", "HTTP_503", "HTTP_504",
})
#: A trigger or flow that failed on one of those (`... caused by: ... UNABLE_TO_LOCK_ROW ...`) is retryable too.
WRAPPING_CODE = "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
#: Our codes for rows Salesforce gave no result for.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # a create whose answer was lost: it may exist, so it is not sent again
BULK_JOB_FAILED = "BULK_JOB_FAILED"  # the ingest job failed as a whole (message: the job's errorMessage)
BULK_RESULT_MISSING = "BULK_RESULT_MISSING"  # the job finished but listed no result for the row
#: Request-level refusals no single record causes: raised, not blamed on rows by splitting the request.
REQUEST_LEVEL_CODES = frozenset({"INVALID_TYPE", "NOT_FOUND", "INVALID_SESSION_ID", "API_DISABLED_FOR_ORG",
                                 "API_CURRENTLY_DISABLED", "INSUFFICIENT_ACCESS", "REQUEST_LIMIT_EXCEEDED"})


@dataclass(frozen=True)
class RecordError:
    """Why Salesforce did not write one record, in its own words. `duplicate_ids`: the records a duplicate
    rule matched (DUPLICATES_DETECTED through Collections)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()
    duplicate_ids: tuple[str, ...] = ()

    @property
    def retryable(self) -> bool:
        if self.status_code == "REQUEST_LIMIT_EXCEEDED":  # too many long requests at once, not the daily quota
            return "TotalRequests" not in self.message
        if self.status_code in RETRYABLE_CODES:
            return True
        return self.status_code == WRAPPING_CODE and any(code in self.message for code in RETRYABLE_CODES)

    @classmethod
    def from_item(cls, error: Mapping[str, Any]) -> RecordError:
        """One error entry: a Collections/SOAP item (`statusCode`) or a REST error-list entry (`errorCode`)."""
        duplicate = error.get("duplicateResut") or error.get("duplicateResult") or {}
        ids = tuple(match["record"]["Id"] for result in duplicate.get("matchResults") or ()
                    for match in result.get("matchRecords") or () if (match.get("record") or {}).get("Id"))
        return cls(str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN_EXCEPTION"),
                   str(error.get("message") or ""), tuple(error.get("fields") or ()), ids)

    @classmethod
    def from_bulk_cell(cls, cell: str) -> RecordError:
        """A Bulk 2.0 `sf__Error` cell: `CODE:message:Field1,Field2 --`, or `CODE:message:--` without fields."""
        code, _, rest = cell.partition(":")
        rest = rest.strip()
        rest = rest[:-2] if rest.endswith("--") else rest
        message, _, fields = rest.rpartition(":")
        if not _:
            message, fields = rest, ""
        return cls(code.strip(), message.strip(), tuple(f.strip() for f in fields.split(",") if f.strip()))

    @classmethod
    def from_request_error(cls, err: SalesforceRequestError) -> RecordError:
        """The error of a whole request, as the error of a record it carried."""
        if isinstance(err.body, list) and err.body and isinstance(err.body[0], Mapping):
            return cls.from_item(err.body[0])
        code = err.error_code or (f"HTTP_{err.status}" if err.status else "CONNECTION_LOST")
        return cls(code, str(err))


@dataclass(frozen=True)
class RecordResult:
    """What became of one record of a `write`: `index` is its position in the records given."""

    index: int
    salesforce_id: str | None
    created: bool
    error: RecordError | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Outcome:
    """What one send did to a record (a RecordResult before the attempts are counted)."""

    salesforce_id: str | None = None
    created: bool = False
    error: RecordError | None = None


class RecordWriter:
    """Writes records of one org for one integration and counts the API calls it makes."""

    def __init__(self, client: SalesforceClient, *, bulk_threshold: int = 2_000, client_name: str = "salesforce-sync",
                 max_attempts: int = 3, poll_seconds: float = 0.2) -> None:
        self.client = client
        self.bulk_threshold = bulk_threshold
        self.client_name = client_name
        self.max_attempts = max(1, max_attempts)
        self.poll_seconds = poll_seconds
        self._api_calls = 0
        self._halted: RecordError | None = None

    @property
    def api_calls(self) -> int:
        return self._api_calls

    @property
    def _headers(self) -> dict[str, str]:
        return {"Sforce-Call-Options": f"client={self.client_name}"}

    def _counted(self, call: Callable[[], Any]) -> Any:
        before = self.client.api_calls
        try:
            return call()
        finally:
            self._api_calls += self.client.api_calls - before

    # ---- writes ----------------------------------------------------------------------------------

    def write(self, object_name: str, operation: Operation, records: Sequence[Mapping[str, Any]], *,
              external_id_field: str | None = None) -> list[RecordResult]:
        """One result per record, in input order.

        Fewer than `bulk_threshold` records go through sObject Collections (<= 200 per call, allOrNone false),
        more through Bulk 2.0 ingest jobs. A refusal of the whole object or session (unknown object, daily API
        quota spent) ends the write: the records not yet written get that error, those written keep their result.
        A key set to None (or "") clears the field; an absent key leaves it as it is. Update records carry "Id";
        upsert records carry `external_id_field`. Records failing with a retryable error are sent again, alone,
        after a growing wait, until `max_attempts`. A request refused as a whole (HTTP 400) is split in halves
        until the records at fault are found, each getting the error."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown write operation {operation!r}: use insert, update or upsert")
        if operation == "upsert" and not external_id_field:
            raise ValueError(f"upsert of {object_name} needs an external_id_field")
        self._halted = None
        results: list[RecordResult | None] = [None] * len(records)
        attempts = [0] * len(records)
        pending = list(range(len(records)))
        round_number = 0
        while pending:
            round_number += 1
            if round_number > 1:
                self.client.retry_policy.sleep(self._backoff(round_number - 1))
                if self._halted is not None and self._halted.retryable:  # a passing refusal: try again
                    self._halted = None
            for index in pending:
                attempts[index] += 1
            rows = [records[i] for i in pending]
            outcomes = self._counted(lambda: self._send(object_name, operation, rows, external_id_field))
            again = []
            for index, outcome in zip(pending, outcomes):
                if outcome.error is not None and outcome.error.retryable and attempts[index] < self.max_attempts:
                    again.append(index)
                else:
                    results[index] = RecordResult(index, outcome.salesforce_id, outcome.created, outcome.error,
                                                  attempts[index])
            pending = again
        return results  # type: ignore[return-value]  # every slot is filled once pending is empty

    def _backoff(self, retry: int) -> float:
        policy = self.client.retry_policy
        return min(policy.max_seconds, policy.initial_seconds * 2 ** (retry - 1)) + random.uniform(0, policy.jitter_seconds)

    def _send(self, object_name: str, operation: Operation, rows: Sequence[Mapping[str, Any]],
              external_id_field: str | None) -> list[_Outcome]:
        if self._halted is not None:
            return [_Outcome(error=self._halted)] * len(rows)
        if len(rows) >= self.bulk_threshold:
            return self._bulk(object_name, operation, rows, external_id_field)
        outcomes: list[_Outcome] = []
        for start in range(0, len(rows), COLLECTION_SIZE):
            outcomes.extend(self._collection(object_name, operation, rows[start:start + COLLECTION_SIZE],
                                             external_id_field))
        return outcomes

    def _halt(self, err: SalesforceRequestError) -> RecordError:
        """The error of a refusal no record causes; nothing more is sent in this write."""
        self._halted = RecordError.from_request_error(err)
        return self._halted

    # ---- sObject Collections ---------------------------------------------------------------------

    def _collection(self, object_name: str, operation: Operation, rows: Sequence[Mapping[str, Any]],
                    external_id_field: str | None) -> list[_Outcome]:
        """One Collections call (one API call), split in halves when Salesforce refuses it whole."""
        if operation == "insert":
            method, path = "POST", "composite/sobjects"
        elif operation == "update":
            method, path = "PATCH", "composite/sobjects"
        else:
            method, path = "PATCH", f"composite/sobjects/{object_name}/{external_id_field}"
        if self._halted is not None:
            return [_Outcome(error=self._halted)] * len(rows)
        body = {"allOrNone": False, "records": [
            {"attributes": {"type": object_name}, **{k: _json_value(v) for k, v in row.items()}} for row in rows]}
        try:
            items = self.client._request(method, path, json=body, headers=self._headers,
                                         idempotent=operation != "insert").json()
        except requests.RequestException as err:  # still lost after the client's retries; never sent, if a create
            return [_Outcome(error=RecordError("CONNECTION_LOST", f"{type(err).__name__}: {err}"))] * len(rows)
        except SalesforceRequestError as err:
            return self._refused(err, rows, lambda part: self._collection(object_name, operation, part,
                                                                          external_id_field))
        return [_Outcome(item.get("id"), bool(item.get("created", operation == "insert")))
                if item.get("success") else
                _Outcome(item.get("id"), False, RecordError.from_item((item.get("errors") or [{}])[0]))
                for item in items]

    def _refused(self, err: SalesforceRequestError, rows: Sequence[Mapping[str, Any]],
                 resend: Callable[[Sequence[Mapping[str, Any]]], list[_Outcome]]) -> list[_Outcome]:
        """The rows' outcomes when their request failed as a whole: the error for every row when it is transient
        or the outcome is unknown; halves sent apart when a row may be at fault (400); else the write halts."""
        if err.outcome_unknown:
            return [_Outcome(error=RecordError(OUTCOME_UNKNOWN, str(err)))] * len(rows)
        if transient_cause(err) is not None:
            return [_Outcome(error=RecordError.from_request_error(err))] * len(rows)
        if err.status != 400 or err.error_code in REQUEST_LEVEL_CODES:
            return [_Outcome(error=self._halt(err))] * len(rows)
        if len(rows) == 1:
            return [_Outcome(error=RecordError.from_request_error(err))]
        middle = len(rows) // 2
        return resend(rows[:middle]) + resend(rows[middle:])

    # ---- Bulk API 2.0 ingest ---------------------------------------------------------------------

    def _bulk(self, object_name: str, operation: Operation, rows: Sequence[Mapping[str, Any]],
              external_id_field: str | None) -> list[_Outcome]:
        """Ingest jobs of at most MAX_JOB_BYTES of CSV each, their results mapped back to the rows."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        null = "" if operation == "insert" else BULK_NULL
        outcomes: list[_Outcome] = []
        for data, keys in _csv_jobs(rows, columns, null):
            outcomes.extend(self._job(object_name, operation, external_id_field, columns, data, keys))
        return outcomes

    def _job(self, object_name: str, operation: Operation, external_id_field: str | None, columns: list[str],
             data: bytes, keys: list[bytes]) -> list[_Outcome]:
        """One ingest job: create, upload, close, wait, read its three result files."""
        spec: dict[str, Any] = {"object": object_name, "operation": operation, "contentType": "CSV",
                                "columnDelimiter": "COMMA", "lineEnding": "LF"}
        if operation == "upsert":
            spec["externalIdFieldName"] = external_id_field
        if self._halted is not None:
            return [_Outcome(error=self._halted)] * len(keys)
        try:
            job_id = self.client._request("POST", "jobs/ingest", json=spec, headers=self._headers).json()["id"]
        except requests.RequestException as err:
            return [_Outcome(error=RecordError("CONNECTION_LOST", f"{type(err).__name__}: {err}"))] * len(keys)
        except SalesforceRequestError as err:
            if transient_cause(err) is None and (err.status != 400 or err.error_code in REQUEST_LEVEL_CODES):
                return [_Outcome(error=self._halt(err))] * len(keys)
            return [_Outcome(error=RecordError.from_request_error(err))] * len(keys)
        try:
            self.client._request("PUT", f"jobs/ingest/{job_id}/batches", data=data, idempotent=False,
                                 headers={**self._headers, "Content-Type": "text/csv"})
            self._close(job_id)
        except (SalesforceRequestError, requests.RequestException) as err:
            if self._abort(job_id):  # nothing of an aborted job is processed: its rows may all be sent again
                lost = not isinstance(err, SalesforceRequestError) or err.outcome_unknown
                error = RecordError("CONNECTION_LOST", str(err)) if lost else RecordError.from_request_error(err)
                return [_Outcome(error=error)] * len(keys)
            # not aborted: the close went through after all, so the job runs; read its results
        try:
            return self._job_results(job_id, self._wait(job_id), columns, keys, operation)
        except (SalesforceRequestError, requests.RequestException) as err:  # the job runs, its results are unknown
            return [_Outcome(error=RecordError(OUTCOME_UNKNOWN, f"Bulk job {job_id} was closed but its results "
                                               f"could not be read: {err}"))] * len(keys)

    def _close(self, job_id: str) -> None:
        """UploadComplete; when a retried close finds the job closed already (the first answer was lost), fine."""
        try:
            self.client._request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"},
                                 headers=self._headers)
        except SalesforceRequestError as err:
            if err.error_code != "INVALIDJOBSTATE" or \
                    self.client._request("GET", f"jobs/ingest/{job_id}").json()["state"] == "Open":
                raise

    def _abort(self, job_id: str) -> bool:
        """Whether the job is now Aborted (False: it was closed already, or the org could not be reached)."""
        try:
            self.client._request("PATCH", f"jobs/ingest/{job_id}", json={"state": "Aborted"}, headers=self._headers)
            return True
        except (SalesforceRequestError, requests.RequestException):
            return False

    def _wait(self, job_id: str) -> dict[str, Any]:
        delay = self.poll_seconds
        while True:
            state = self.client._request("GET", f"jobs/ingest/{job_id}").json()
            if state["state"] in ("JobComplete", "Failed", "Aborted"):
                return state
            if state["state"] == "Open":
                raise SalesforceRequestError(f"Bulk job {job_id} is still Open: it was never closed")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _job_results(self, job_id: str, state: dict[str, Any], columns: list[str], keys: list[bytes],
                     operation: Operation) -> list[_Outcome]:
        """Outcomes in upload order: result rows echo the uploaded cells (in any order), so each is matched to
        the upload row with the same cells."""
        positions: dict[bytes, deque[int]] = defaultdict(deque)
        for position, key in enumerate(keys):
            positions[key].append(position)
        outcomes: list[_Outcome | None] = [None] * len(keys)

        def place(key: bytes, outcome: _Outcome) -> None:
            waiting = positions.get(key)
            if waiting:
                outcomes[waiting.popleft()] = outcome

        for sf_id, created, _, key in self._result_rows(job_id, "successfulResults", columns):
            place(key, _Outcome(sf_id or None, created == "true" if operation != "update" else False))
        for sf_id, _, error, key in self._result_rows(job_id, "failedResults", columns):
            place(key, _Outcome(sf_id or None, False, RecordError.from_bulk_cell(error)))
        job_error = RecordError(BULK_JOB_FAILED, f"Bulk job {job_id} {state['state']}: {state.get('errorMessage', '')}")
        for _, _, _, key in self._result_rows(job_id, "unprocessedrecords", columns):
            place(key, _Outcome(error=job_error))
        missing = RecordError(BULK_RESULT_MISSING, f"Bulk job {job_id} ({state['state']}) gave no result for the row")
        return [outcome or _Outcome(error=job_error if state["state"] != "JobComplete" else missing)
                for outcome in outcomes]

    def _result_rows(self, job_id: str, kind: str, columns: list[str]) -> Iterator[tuple[str, str, str, bytes]]:
        """(sf__Id, sf__Created, sf__Error, key of the echoed cells) of each row of one result file."""
        content = self.client._request("GET", f"jobs/ingest/{job_id}/{kind}").content
        reader = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
        header = next(reader, None)
        if not header:
            return
        where = {name: i for i, name in enumerate(header)}
        echoed = [where.get(name) for name in columns]
        for row in reader:
            if not row:
                continue
            cells = [row[i] if i is not None and i < len(row) else "" for i in echoed]
            yield (_cell_at(row, where.get("sf__Id")), _cell_at(row, where.get("sf__Created")),
                   _cell_at(row, where.get("sf__Error")), _row_key(cells))

    # ---- look-ups --------------------------------------------------------------------------------

    def find(self, object_name: str, field: str, values: Iterable[str], fields: Sequence[str], *,
             where: str = "") -> list[dict[str, Any]]:
        """Live records whose `field` is one of `values` (and that meet the SOQL condition `where`, if given), with
        their Id and `fields`, in as few queries as the URL length of a REST query allows (hundreds of keys each)."""
        condition = f"{where} AND " if where else ""
        head = f"SELECT {', '.join(dict.fromkeys(['Id', *fields]))} FROM {object_name} WHERE {condition}{field} IN ("
        terms = (format_soql("{}", value) for value in dict.fromkeys(v for v in values if v not in (None, "")))
        return self._query_batches(head, ",", ")", terms)

    def find_by_domain(self, object_name: str, domains: Iterable[str], fields: Sequence[str], *,
                       field: str = "Website") -> list[dict[str, Any]]:
        """Candidate records whose `field` contains one of `domains` (`LIKE '%domain%'`, OR-ed, batched); the
        caller normalises the values and picks."""
        head = f"SELECT {', '.join(dict.fromkeys(['Id', *fields]))} FROM {object_name} WHERE ("
        terms = (format_soql(f"{field} LIKE '%{{:like}}%'", domain)
                 for domain in dict.fromkeys(d for d in domains if d))
        return self._query_batches(head, " OR ", ")", terms)

    def _query_batches(self, head: str, separator: str, tail: str, terms: Iterable[str]) -> list[dict[str, Any]]:
        budget = MAX_QUERY_URL_CHARS - len(quote_plus(head + tail))
        found: list[dict[str, Any]] = []
        batch: list[str] = []
        used = 0
        for term in terms:
            cost = len(quote_plus(term + separator))
            if batch and used + cost > budget:
                found.extend(self._query(head + separator.join(batch) + tail))
                batch, used = [], 0
            batch.append(term)
            used += cost
        if batch:
            found.extend(self._query(head + separator.join(batch) + tail))
        return found

    def _query(self, soql: str) -> list[dict[str, Any]]:
        result = self._counted(lambda: self.client._simple("query", lambda: self.client.sf.query_all(soql)))
        return [_without_attributes(record) for record in result["records"]]


def _without_attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_attributes(v) if isinstance(v, dict) else v for k, v in record.items() if k != "attributes"}


def _json_value(value: Any) -> Any:
    """A Python value as Salesforce's JSON takes it."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ";".join(str(v) for v in value)  # a multi-select picklist
    return value


def _cell(value: Any, null: str) -> str:
    """A Python value as a Bulk CSV cell; None and "" are `null` (#N/A on update/upsert: clear the field)."""
    value = _json_value(value)
    if value is None or value == "":
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cell_at(row: list[str], index: int | None) -> str:
    return row[index] if index is not None and index < len(row) else ""


def _row_key(cells: list[str]) -> bytes:
    return hashlib.blake2b("\x1f".join(cells).encode(), digest_size=16).digest()


def _csv_jobs(rows: Sequence[Mapping[str, Any]], columns: list[str],
              null: str) -> Iterator[tuple[bytes, list[bytes]]]:
    """(CSV bytes, key of each row) per job of at most MAX_JOB_BYTES; absent keys are empty
    cells (unchanged)."""
    def new_buffer() -> tuple[io.StringIO, Any]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        return buffer, writer

    buffer, writer = new_buffer()
    keys: list[bytes] = []
    for row in rows:
        cells = [_cell(row[name], null) if name in row else "" for name in columns]
        writer.writerow(cells)
        keys.append(_row_key(cells))
        if buffer.tell() >= MAX_JOB_BYTES:
            yield buffer.getvalue().encode(), keys
            buffer, writer = new_buffer()
            keys = []
    if keys:
        yield buffer.getvalue().encode(), keys
