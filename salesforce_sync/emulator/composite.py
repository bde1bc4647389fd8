"""Composite (`POST /composite`): up to 25 subrequests in one API call, later ones naming earlier results as
`@{referenceId.id}` or `@{referenceId.records[0].Id}`, all of them in one transaction that allOrNone rolls
back whole."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from salesforce_sync.emulator.core import DATA, VERSION_PREFIX, Request, Response, Router, json_bytes
from salesforce_sync.emulator.errors import SalesforceApiError, not_found

COMPOSITE_LIMIT = 25
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")
FORBIDDEN_HEADERS = ("accept", "authorization", "content-type")
ROLLED_BACK = [{"errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same transaction failed."}]


def register(router: Router) -> None:
    router.add("POST", DATA + r"/composite", "composite")(composite)


class _Rollback(Exception):
    """An allOrNone subrequest failed: leave the transaction so it rolls back."""


class _Unresolved(Exception):
    """A subrequest names a reference no earlier subrequest produced."""


def composite(request: Request) -> Response:
    subrequests, all_or_none = _subrequests(request)
    produced: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    try:
        with request.org.transaction():
            for sub in subrequests:
                item = _run(request, sub, produced)
                items.append(item)
                if item["httpStatusCode"] >= 400:
                    if all_or_none:
                        raise _Rollback
                else:
                    produced[sub["referenceId"]] = item["body"]
    except _Rollback:
        failed = len(items) - 1
        items = [items[i] if i == failed else _halted(sub["referenceId"], ROLLED_BACK)
                 for i, sub in enumerate(subrequests)]
    return Response.json({"compositeResponse": items})


def _subrequests(request: Request) -> tuple[list[dict[str, Any]], bool]:
    body = request.json()
    subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subrequests, list) or not subrequests:
        raise SalesforceApiError(400, "JSON_PARSER_ERROR", "The request body must contain a compositeRequest array")
    if len(subrequests) > COMPOSITE_LIMIT:
        raise SalesforceApiError(400, "INVALID_BATCH_REQUEST",
                                 f"Limit of {COMPOSITE_LIMIT} subrequests exceeded: {len(subrequests)}")
    seen: set[str] = set()
    for sub in subrequests:
        if not isinstance(sub, dict) or not sub.get("method") or not sub.get("url"):
            raise SalesforceApiError(400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId")
        ref = sub.get("referenceId")
        if not isinstance(ref, str) or not REFERENCE_ID.match(ref) or ref in seen:
            raise SalesforceApiError(400, "INVALID_INPUT", f"Invalid or duplicate referenceId: {ref}")
        seen.add(ref)
        bad = [h for h in (sub.get("httpHeaders") or {}) if h.lower() in FORBIDDEN_HEADERS]
        if bad:
            raise SalesforceApiError(400, "INVALID_INPUT", f"Header not allowed in a subrequest: {bad[0]}")
    return subrequests, bool(body.get("allOrNone"))


def _halted(reference_id: str, body: list[dict[str, str]]) -> dict[str, Any]:
    return {"body": body, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference_id}


def _run(request: Request, sub: dict[str, Any], produced: dict[str, Any]) -> dict[str, Any]:
    """One subrequest through the server's routes, inside the composite's transaction and API call."""
    try:
        url = _resolve(sub["url"], produced, in_url=True)
        payload = _resolve(sub.get("body"), produced, in_url=False)
    except _Unresolved as missing:
        return _halted(sub["referenceId"], [{"errorCode": "PROCESSING_HALTED", "message": str(missing)}])
    split = urlsplit(url)
    path = split.path.rstrip("/")
    method = sub["method"].upper()
    m = VERSION_PREFIX.match(path)
    route, params, _ = request.server.router.match(method, path)
    if m is None or route is None or not route.api or route.name == "composite":
        response = Response.json(not_found().body(), 404)
    else:
        headers = CaseInsensitiveDict({**dict(request.headers.items()), **(sub.get("httpHeaders") or {})})
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        body = json_bytes(payload) if payload is not None else b""
        inner = Request(method, path, query, headers, body, params, request.server, m.group(1), request.token)
        try:
            response = route.handler(inner)
        except SalesforceApiError as err:
            response = Response.json(err.body(), err.status)
    item_headers: dict[str, str] = {}
    parsed = json.loads(response.body) if response.body else None
    if response.status == 201 and isinstance(parsed, dict) and parsed.get("id"):
        item_headers["Location"] = f"{path}/{parsed['id']}"
    return {"body": parsed, "httpHeaders": item_headers, "httpStatusCode": response.status,
            "referenceId": sub["referenceId"]}


def _resolve(value: Any, produced: dict[str, Any], *, in_url: bool) -> Any:
    """`value` with every `@{ref.path}` replaced by what subrequest `ref` returned at `path`."""
    if isinstance(value, dict):
        return {k: _resolve(v, produced, in_url=in_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, produced, in_url=in_url) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole and not in_url:
        return _lookup(produced, whole.group(1), whole.group(2))
    return REFERENCE.sub(lambda m: str(_lookup(produced, m.group(1), m.group(2))), value)


def _lookup(produced: dict[str, Any], reference_id: str, path: str) -> Any:
    if reference_id not in produced:
        raise _Unresolved(f"Invalid reference specified. No value for {reference_id}.{path} found in {reference_id}.")
    value = produced[reference_id]
    for name, index in re.findall(r"([^.\[\]]+)(?:\[(\d+)\])?", path):
        try:
            value = value[name]
            if index:
                value = value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(f"Invalid reference specified. No value for {reference_id}.{path} found in "
                              f"{reference_id}.") from None
    return value
