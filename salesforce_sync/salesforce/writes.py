"""Writing records: sObject Collections (200 records a call), each record's result in input order with
Salesforce's statusCode, message and fields; records refused for a transient reason tried again; `find` reads
records by a field's values, many per query. Our client name goes in Sforce-Call-Options, so change events of
our own writes can be recognised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from simple_salesforce import format_soql

from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.retries import TRANSIENT_ERROR_CODES

COLLECTION_SIZE = 200
VALUES_PER_QUERY = 200
Operation = Literal["insert", "update", "upsert"]


@dataclass(frozen=True)
class RecordError:
    """Why Salesforce refused one record."""

    status_code: str
    message: str
    fields: tuple[str, ...]
    duplicate_ids: tuple[str, ...] = ()

    @property
    def retryable(self) -> bool:
        return self.status_code in TRANSIENT_ERROR_CODES


@dataclass(frozen=True)
class RecordResult:
    """One record's result, `index` its place in the input."""

    index: int
    salesforce_id: str | None
    created: bool
    error: RecordError | None
    attempts: int


class RecordWriter:
    """Writes records of one org through `client`; `api_calls` counts the calls it made."""

    def __init__(self, client: SalesforceClient, *, bulk_threshold: int = 2_000, client_name: str = "salesforce-sync",
                 max_attempts: int = 3) -> None:
        self.client = client
        self.bulk_threshold = bulk_threshold
        self.client_name = client_name
        self.max_attempts = max_attempts
        self.api_calls = 0

    def write(self, object_name: str, operation: Operation, records: Sequence[Mapping[str, Any]], *,
              external_id_field: str | None = None) -> list[RecordResult]:
        """Results in input order; a None value sets null, an absent key leaves the field; updates carry "Id"."""
        results: dict[int, RecordResult] = {}
        pending = list(range(len(records)))
        attempt = 0
        while pending and attempt < self.max_attempts:
            attempt += 1
            retry = []
            for start in range(0, len(pending), COLLECTION_SIZE):
                batch = pending[start:start + COLLECTION_SIZE]
                answers = self._collection(object_name, operation, [records[i] for i in batch], external_id_field)
                for index, answer in zip(batch, answers):
                    result = _result(index, answer, operation, attempt)
                    results[index] = result
                    if result.error is not None and result.error.retryable:
                        retry.append(index)
            pending = retry
        return [results[index] for index in range(len(records))]

    def find(self, object_name: str, field: str, values: Iterable[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """Non-deleted records whose `field` is one of `values`, with `fields` (text values, as read)."""
        wanted = sorted(set(values))
        columns = ", ".join(dict.fromkeys(["Id", field, *fields]))
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), VALUES_PER_QUERY):
            soql = format_soql(f"SELECT {columns} FROM {object_name} WHERE {field} IN {{}}",
                               wanted[start:start + VALUES_PER_QUERY])
            found += self._query(soql)
        return found

    def _query(self, soql: str) -> list[dict[str, Any]]:
        """Every non-deleted record a query selects, as flattened text values."""
        before = self.client.api_calls
        rows = [row for chunk in self.client.rest_chunks(soql, include_deleted=False, chunk_rows=2_000)
                for row in chunk.to_dict("records")]
        self.api_calls += self.client.api_calls - before
        return rows

    def _collection(self, object_name: str, operation: Operation, records: list[Mapping[str, Any]],
                    external_id_field: str | None) -> list[dict[str, Any]]:
        body = {"allOrNone": False, "records": [
            {"attributes": {"type": object_name}, **{k: v for k, v in r.items() if not (operation == "upsert" and k == "Id")}}
            for r in records]}
        if operation == "insert":
            method, path = "POST", "composite/sobjects"
        elif operation == "update":
            method, path = "PATCH", "composite/sobjects"
        else:
            if external_id_field is None:
                raise ValueError("an upsert needs external_id_field")
            method, path = "PATCH", f"composite/sobjects/{object_name}/{external_id_field}"
        before = self.client.api_calls
        response = self.client._request(method, path, json=body,
                                        headers={"Sforce-Call-Options": f"client={self.client_name}"})
        self.api_calls += self.client.api_calls - before
        return response.json()


def _result(index: int, answer: Mapping[str, Any], operation: Operation, attempt: int) -> RecordResult:
    if answer.get("success"):
        created = bool(answer.get("created", operation == "insert"))
        return RecordResult(index, answer.get("id"), created, None, attempt)
    error = (answer.get("errors") or [{}])[0]
    duplicates = error.get("duplicateResut") or error.get("duplicateResult") or {}
    duplicate_ids = tuple(match_record["record"]["Id"] for result in duplicates.get("matchResults", ())
                          for match_record in result.get("matchRecords", ()))
    return RecordResult(index, answer.get("id"), False, RecordError(
        status_code=error.get("statusCode") or error.get("errorCode") or "UNKNOWN_ERROR",
        message=error.get("message", ""), fields=tuple(error.get("fields") or ()), duplicate_ids=duplicate_ids),
        attempt)
