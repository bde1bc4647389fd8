"""One authenticated connection to an org: REST through simple-salesforce, Bulk API 2.0 streamed chunk by
chunk, a token refresh on every 401 (Bulk included), transient failures retried (`retries`), and a count of
the API calls made with the org's usage from each response's Sforce-Limit-Info.

Records come out as pandas DataFrames of text in Bulk-CSV form (None or str), whichever API read them,
so the mapping layer has one input format.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pandas as pd
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from salesforce_sync.config.secrets import Credentials
from salesforce_sync.salesforce.auth import Token, obtain_token, with_rotated_refresh_token
from salesforce_sync.salesforce.http import make_session
from salesforce_sync.salesforce.retries import (
    DEFAULT_RETRY_POLICY,
    RetryPolicy,
    SalesforceRequestError,
    never_sent,
    retry_after_seconds,
)

API_VERSION = "62.0"
MIN_QUERY_BATCH, MAX_QUERY_BATCH = 200, 2000
LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
INVALID_QUERY_LOCATOR = "INVALID_QUERY_LOCATOR"
T = TypeVar("T")
#: Given the last record read (flattened), the SOQL that reads the rest of a query in the same order.
ResumeQuery = Callable[[dict[str, Any]], str]
__all__ = ["SalesforceClient", "SalesforceRequestError", "rest_page_size"]


def rest_page_size(chunk_rows: int) -> int:
    """The REST page size asked for a chunk size: no larger than a chunk, within Salesforce's 200..2,000."""
    return min(max(chunk_rows, MIN_QUERY_BATCH), MAX_QUERY_BATCH)


class SalesforceClient:
    """Talks to one org for one integration; refreshes its session on 401, retries transient failures by
    `retry_policy` (each retry a warning on `log`) and counts API calls."""

    def __init__(self, credentials: Credentials, login_url: str, *, integration: str, ca_file: str | None = None,
                 api_version: str = API_VERSION, http: requests.Session | None = None,
                 retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY, log: logging.Logger | None = None) -> None:
        self.integration = integration
        self.credentials = credentials
        self.login_url = login_url
        self.api_version = api_version
        self.http = http or make_session(ca_file)
        self.http.hooks["response"].append(self._observe)
        self.retry_policy = retry_policy
        self.log: logging.Logger | logging.LoggerAdapter = log or logging.getLogger(__name__)
        self.api_calls = 0
        #: The org's Pub/Sub API endpoint when the connection knows it (an embedded emulated org serves its own).
        self.pubsub_url: str | None = None
        self.api_usage: tuple[int, int] | None = None
        self._retry_after: float | None = None
        self._token: Token | None = None
        self._sf: Salesforce | None = None

    # ---- session -------------------------------------------------------------------------------

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "/services/data/" in response.url:
            self.api_calls += 1
        match = LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))
        self._retry_after = retry_after_seconds(response.headers.get("Retry-After"))

    def authenticate(self) -> Token:
        """Get a fresh token; keeps a rotated refresh token for the next refresh."""
        self._token = obtain_token(self.credentials, self.login_url, self.http, integration=self.integration)
        self.credentials = with_rotated_refresh_token(self.credentials, self._token)
        self._sf = Salesforce(instance_url=self._token.instance_url, session_id=self._token.access_token,
                              session=self.http, version=self.api_version)
        return self._token

    @property
    def token(self) -> Token:
        return self._token or self.authenticate()

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.authenticate()
        return self._sf

    def _retrying(self, name: str, call: Callable[[], T]) -> T:
        """`call()` under the retry policy; `name` says which call in the retry warnings."""
        return self.retry_policy.call(f"integration {self.integration!r}: {name}", call, log=self.log)

    def _simple(self, name: str, call: Callable[[], T]) -> T:
        """A simple-salesforce call, re-authenticating once on 401 and retried when transient; its errors
        come out as SalesforceRequestError with Salesforce's status and errorCode."""

        def once() -> T:
            try:
                try:
                    return call()
                except SalesforceExpiredSession:
                    self.authenticate()
                    return call()
            except SalesforceError as err:
                code, text = _error_parts(err.content)
                raise SalesforceRequestError(
                    f"integration {self.integration!r}: {name} failed with HTTP {err.status}: {text}",
                    status=err.status, error_code=code, retry_after=self._retry_after) from None

        return self._retrying(name, once)

    def _request(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> requests.Response:
        """A raw call under /services/data/vNN.N, re-authenticating once on 401, retried when transient.

        A call that is not `idempotent` (a create) is not sent again when the connection fails after sending:
        that raises a SalesforceRequestError with `outcome_unknown`, since the records may exist already."""
        extra_headers = kwargs.pop("headers", {})

        def send(url: str, headers: dict[str, str]) -> requests.Response:
            try:
                return self.http.request(method, url, headers=headers, timeout=300, **kwargs)
            except requests.RequestException as err:
                if idempotent or never_sent(err):
                    raise
                raise SalesforceRequestError(
                    f"integration {self.integration!r}: {method} {path}: connection lost before the answer "
                    f"({type(err).__name__}); the write may or may not have been applied",
                    outcome_unknown=True) from err

        def once() -> requests.Response:
            for attempt in (1, 2):
                url = f"{self.token.instance_url}/services/data/v{self.api_version}/{path.lstrip('/')}"
                headers = {"Authorization": f"Bearer {self.token.access_token}", **extra_headers}
                response = send(url, headers)
                if response.status_code == 401 and attempt == 1:
                    self.authenticate()
                    continue
                if response.status_code >= 400:
                    body = _json_or_text(response)
                    code, text = _error_parts(body)
                    raise SalesforceRequestError(
                        f"integration {self.integration!r}: {method} {path} failed with HTTP {response.status_code}: "
                        f"{text}", status=response.status_code, error_code=code,
                        retry_after=retry_after_seconds(response.headers.get("Retry-After")), body=body)
                return response
            raise AssertionError("unreachable")

        return self._retrying(f"{method} {path}", once)

    # ---- metadata and checks -------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            response = self.http.get(self.token.identity_url,
                                     headers={"Authorization": f"Bearer {self.token.access_token}"}, timeout=60)
            if response.status_code != 200:
                raise SalesforceRequestError(f"integration {self.integration!r}: identity call failed with HTTP "
                                             f"{response.status_code}: {response.text[:200]}",
                                             status=response.status_code)
            return response.json()

        return self._retrying("identity", once)

    def limits(self) -> dict[str, Any]:
        return self._request("GET", "limits").json()

    def describe(self, object_name: str) -> dict[str, Any]:
        return self._request("GET", f"sobjects/{object_name}/describe").json()

    def count(self, soql: str, *, include_deleted: bool = True) -> int:
        endpoint = "queryAll" if include_deleted else "query"
        return int(self._request("GET", endpoint, params={"q": soql}).json()["totalSize"])

    # ---- reading records -----------------------------------------------------------------------

    def rest_chunks(self, soql: str, *, include_deleted: bool = True, chunk_rows: int = 50_000,
                    resume: ResumeQuery | None = None) -> Iterator[pd.DataFrame]:
        """Page through query/queryAll, yielding DataFrames of chunk_rows records (the last one smaller).

        Pages are asked no larger than a chunk (Salesforce pages hold 200 to 2,000 records), so a small
        chunk size means small commits and bounded memory even in the middle of a page. When Salesforce
        forgets the query's locator (INVALID_QUERY_LOCATOR: idle too long, too many open cursors), `resume`
        gives the query of the records after the last one read, so nothing read is read again."""
        headers = {"Sforce-Query-Options": f"batchSize={rest_page_size(chunk_rows)}"}

        def first_page(query: str) -> dict[str, Any]:
            return self._simple("query", lambda: self.sf.query(query, include_deleted=include_deleted,
                                                               headers=headers))

        result = first_page(soql)
        pending: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        restarts = 0
        while True:
            records = [_flatten(record) for record in result["records"]]
            last = records[-1] if records else last
            pending.extend(records)
            while len(pending) >= chunk_rows:
                yield _text_frame(pending[:chunk_rows])
                del pending[:chunk_rows]
            if result.get("done", True):
                break
            next_url = result["nextRecordsUrl"]
            try:
                result = self._simple(f"query page {next_url.rsplit('/', 1)[-1]}", lambda: self.sf.query_more(
                    next_url, identifier_is_url=True, include_deleted=include_deleted, headers=headers))
                restarts = 0
            except SalesforceRequestError as err:
                if err.error_code != INVALID_QUERY_LOCATOR or resume is None or last is None:
                    raise
                restarts += 1
                if restarts >= self.retry_policy.attempts:
                    raise
                self.log.warning("integration %r: query locator %s is no longer valid (%s); restarting the query "
                                 "after record %s (restart %d of %d)", self.integration, next_url, err,
                                 last.get("Id"), restarts, self.retry_policy.attempts - 1)
                result = first_page(resume(last))
        if pending:
            yield _text_frame(pending)

    def bulk_chunks(self, soql: str, *, include_deleted: bool = True, max_records: int = 50_000,
                    poll_seconds: float = 0.5) -> Iterator[pd.DataFrame]:
        """Run a Bulk 2.0 query job and stream its CSV results, one DataFrame per result chunk.

        The next chunk is downloaded and parsed in a reader thread while the caller works on this one (the
        download waits on the network and the CSV tokenizer runs without the GIL), so at most two are held."""
        job = self._request("POST", "jobs/query", json={
            "operation": "queryAll" if include_deleted else "query", "query": soql,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}).json()
        job_id = job["id"]
        try:
            delay = 0.0
            while True:
                state = self._request("GET", f"jobs/query/{job_id}").json()
                if state["state"] == "JobComplete":
                    break
                if state["state"] in ("Failed", "Aborted"):
                    raise SalesforceRequestError(f"integration {self.integration!r}: Bulk query job {job_id} "
                                                 f"{state['state']}: {state.get('errorMessage', '')}")
                delay = min(max(delay * 2, poll_seconds), 10.0)
                time.sleep(delay)
            yield from _read_ahead(lambda locator: self._bulk_results(job_id, locator, max_records))
        finally:
            try:
                self._request("DELETE", f"jobs/query/{job_id}")
            except (SalesforceRequestError, requests.RequestException):
                pass

    def _bulk_results(self, job_id: str, locator: str, max_records: int) -> tuple[str, pd.DataFrame | None]:
        """One page of a Bulk query job's results (None when empty) and the locator of the next ("null": none)."""
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        response = self._request("GET", f"jobs/query/{job_id}/results", params=params)
        following = response.headers.get("Sforce-Locator") or "null"
        if not response.content.strip():
            return following, None
        return following, pd.read_csv(io.BytesIO(response.content), dtype=object, keep_default_na=False,
                                      na_filter=False)


def _read_ahead(page: Callable[[str], tuple[str, pd.DataFrame | None]]) -> Iterator[pd.DataFrame]:
    """The frames of pages read by locator, each next page read in a thread while the previous is used."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-reader") as reader:
        pending: Future[tuple[str, pd.DataFrame | None]] | None = reader.submit(page, "")
        while pending is not None:
            locator, frame = pending.result()
            pending = None if locator == "null" else reader.submit(page, locator)
            if frame is not None:
                handed = [frame]
                del frame  # only the caller holds the page while it uses it
                yield handed.pop()


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A REST record as {'Id': ..., 'Owner.Email': ...} text values, the way Bulk CSV writes them."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        name = prefix + key
        if isinstance(value, dict):
            if "attributes" in value:
                out.update(_flatten(value, name + "."))
            else:
                out[name] = _compound_text(value)
        elif value is None:
            out[name] = None
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _compound_text(value: dict[str, Any]) -> str | None:
    parts = [str(v) for v in value.values() if v not in (None, "")]
    return ", ".join(parts) or None


def _text_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records).astype(object).where(lambda df: df.notna(), None)


def _json_or_text(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_parts(body: Any) -> tuple[str | None, str]:
    """(first errorCode, readable text) of a Salesforce error body: a list of {errorCode, message}, or text."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return (body[0].get("errorCode"),
                "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in body))
    return None, str(body)[:500]
