"""Test control, outside the Salesforce API under the reserved path /__emulator__, and its Python client.

Clock (set, move, freeze, skew ahead of or behind the host), faults (errors, cuts and latency after the first
N requests, locked rows, failed Bulk jobs), session expiry, API limits, settings (duplicate rules), schema
changes, record updates (a formula's input), user deactivation, hard deletes, late commits and the API-call
counters, so tests can stage what real orgs do to sync tools.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

from salesforce_sync.emulator.errors import SalesforceApiError
from salesforce_sync.emulator.clock import iso_to_ms, ms_to_iso
from salesforce_sync.emulator.core import CONTROL_PREFIX as PREFIX
from salesforce_sync.emulator.core import Request, Response, Router
from salesforce_sync.emulator.write_rules import DUPLICATE_ACTIONS

SETTABLE = ("access_token_seconds", "rotate_refresh_tokens", "daily_api_max", "jwt_public_key_pem", "redirect_uris",
            "duplicate_rules")


def register(router: Router) -> None:
    add = router.add
    add("GET", PREFIX + r"/info", "control.info", api=False)(info)
    add("GET", PREFIX + r"/clock", "control.clock", api=False)(clock)
    add("POST", PREFIX + r"/clock", "control.clock", api=False)(set_clock)
    add("POST", PREFIX + r"/faults", "control.faults", api=False)(add_fault)
    add("DELETE", PREFIX + r"/faults", "control.faults", api=False)(clear_faults)
    add("POST", PREFIX + r"/faults/row-locks", "control.rowLocks", api=False)(lock_rows)
    add("POST", PREFIX + r"/faults/bulk-jobs", "control.bulkJobs", api=False)(fail_bulk_jobs)
    add("POST", PREFIX + r"/users/(?P<id>\w+)/active", "control.userActive", api=False)(set_user_active)
    add("PATCH", PREFIX + r"/records/(?P<object>\w+)/(?P<id>\w+)", "control.update", api=False)(update_record)
    add("POST", PREFIX + r"/sessions/expire", "control.expire", api=False)(expire_sessions)
    add("POST", PREFIX + r"/limits", "control.limits", api=False)(set_limits)
    add("POST", PREFIX + r"/settings", "control.settings", api=False)(update_settings)
    add("POST", PREFIX + r"/schema", "control.schema", api=False)(change_schema)
    add("POST", PREFIX + r"/records/(?P<object>\w+)/hard-delete", "control.hardDelete", api=False)(hard_delete)
    add("POST", PREFIX + r"/records/(?P<object>\w+)/late-commit", "control.lateCommit", api=False)(late_commit)
    add("GET", PREFIX + r"/api-calls", "control.apiCalls", api=False)(api_calls)
    add("DELETE", PREFIX + r"/api-calls", "control.apiCalls", api=False)(reset_api_calls)


def connection_info(request_or_server: Any) -> dict[str, Any]:
    """What a client needs to reach the org: the same JSON `emulator serve` prints first."""
    server = getattr(request_or_server, "server", request_or_server)
    settings = server.org.settings
    return {
        "instance_url": server.base_url, "login_url": server.base_url, "http_url": server.http_url,
        "ca_file": server.ca_file, "org_id": settings.org_id, "client_id": settings.client_id,
        "client_secret": settings.client_secret, "username": settings.username, "password": settings.password,
        "security_token": settings.security_token, "refresh_token": settings.refresh_token,
        "state_file": None if server.org.path == ":memory:" else server.org.path,
    }


def info(request: Request) -> Response:
    return Response.json(connection_info(request))


def clock(request: Request) -> Response:
    return Response.json({"now": ms_to_iso(request.org.now_ms(), "Z")})


def set_clock(request: Request) -> Response:
    body = request.json() or {}
    if "set" in body:
        ms = iso_to_ms(body["set"])
        if ms is None:
            raise SalesforceApiError(400, "INVALID_CLOCK", f"not an ISO datetime: {body['set']}")
        request.org.set_clock(dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc), frozen=bool(body.get("freeze")))
    elif "skew_seconds" in body:
        request.org.skew_clock(dt.timedelta(seconds=float(body["skew_seconds"])))
    elif "move_seconds" in body:
        request.org.move_clock(dt.timedelta(seconds=float(body["move_seconds"])))
    elif body.get("unfreeze"):
        request.org.unfreeze_clock()
    elif body.get("freeze"):
        request.org.set_clock(request.org.now(), frozen=True)
    return clock(request)


def add_fault(request: Request) -> Response:
    body = request.json() or {}
    try:
        fault_id = request.org.add_fault(
            body.get("kind", "error"), body["path"], count=int(body.get("count", 1)), method=body.get("method"),
            status=body.get("status"), error_code=body.get("error_code"), message=body.get("message"),
            latency_ms=body.get("latency_ms"), after=int(body.get("after", 0)))
    except (KeyError, ValueError) as exc:
        raise SalesforceApiError(400, "INVALID_FAULT", f"bad fault: {exc}") from None
    return Response.json({"id": fault_id}, 201)


def clear_faults(request: Request) -> Response:
    request.org.clear_faults()
    return Response.empty(204)


def lock_rows(request: Request) -> Response:
    body = request.json() or {}
    return Response.json({"id": request.org.lock_rows(body.get("object", ""), int(body.get("count", 1)))}, 201)


def fail_bulk_jobs(request: Request) -> Response:
    body = request.json() or {}
    try:
        fault_id = request.org.fail_bulk_jobs(body.get("object", ""), body.get("message") or "InternalServerError",
                                              count=int(body.get("count", 1)), job_type=body.get("job_type"))
    except ValueError as exc:
        raise SalesforceApiError(400, "INVALID_FAULT", f"bad fault: {exc}") from None
    return Response.json({"id": fault_id}, 201)


def set_user_active(request: Request) -> Response:
    """Deactivate (or reactivate) a user: writes naming an inactive user as owner then fail."""
    active = (request.json() or {}).get("active")
    if not isinstance(active, bool):
        raise SalesforceApiError(400, "INVALID_INPUT", "active must be true or false")
    request.org.update("User", request.params["id"], {"IsActive": active})
    return Response.empty(204)


def update_record(request: Request) -> Response:
    """Update a record as another user of the org would (its own stamps move; children's formulas change)."""
    request.org.update(request.params["object"], request.params["id"], request.json() or {})
    return Response.empty(204)


def expire_sessions(request: Request) -> Response:
    return Response.json({"expired": request.org.expire_sessions()})


def set_limits(request: Request) -> Response:
    body = request.json() or {}
    if "max" in body:
        request.org.set_api_limit(int(body["max"]))
    if body.get("exhaust"):
        request.org.exhaust_api_limit()
    used, maximum = request.org.api_usage()
    return Response.json({"used": used, "max": maximum})


def update_settings(request: Request) -> Response:
    body = request.json() or {}
    unknown = set(body) - set(SETTABLE)
    if unknown:
        raise SalesforceApiError(400, "INVALID_SETTING", f"not settable: {sorted(unknown)}; use {SETTABLE}")
    if "redirect_uris" in body:
        body["redirect_uris"] = tuple(body["redirect_uris"])
    rules = body.get("duplicate_rules", {})
    if not isinstance(rules, dict) or any(action not in DUPLICATE_ACTIONS for action in rules.values()):
        raise SalesforceApiError(400, "INVALID_SETTING", f"duplicate_rules maps objects to one of {DUPLICATE_ACTIONS}")
    request.org.update_settings(**body)
    return Response.empty(204)


def change_schema(request: Request) -> Response:
    request.org.change_schema(request.json() or {})
    return Response.empty(204)


def hard_delete(request: Request) -> Response:
    ids = (request.json() or {}).get("ids") or []
    return Response.json({"deleted": request.org.hard_delete(request.params["object"], ids)})


def late_commit(request: Request) -> Response:
    """Write a record that becomes visible only now but is stamped with an earlier LastModifiedDate,
    as a long transaction does: create it, or update `id`."""
    body = request.json() or {}
    stamp = iso_to_ms(body.get("last_modified", ""))
    if stamp is None:
        raise SalesforceApiError(400, "INVALID_STAMP", "last_modified must be an ISO datetime")
    obj = request.params["object"]
    if body.get("id"):
        request.org.update(obj, body["id"], body.get("values") or {}, stamp_ms=stamp)
        return Response.json({"id": body["id"]})
    return Response.json({"id": request.org.create(obj, body.get("values") or {}, stamp_ms=stamp)}, 201)


def api_calls(request: Request) -> Response:
    used, maximum = request.org.api_usage()
    return Response.json({"by_endpoint": request.org.api_calls(), "used": used, "max": maximum})


def reset_api_calls(request: Request) -> Response:
    request.org.reset_api_calls()
    return Response.empty(204)


def client_session(ca_file: str | None) -> requests.Session:
    """A session that verifies with the emulator's CA whatever REQUESTS_CA_BUNDLE says (trust_env off:
    the emulator is on this machine, so no proxy applies either)."""
    session = requests.Session()
    session.trust_env = False
    if ca_file:
        session.verify = ca_file
    return session


class EmulatorControl:
    """Python client for the control API of an emulator running anywhere (this process or another)."""

    def __init__(self, base_url: str, ca_file: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = client_session(ca_file)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, self.base_url + PREFIX + path, json=body, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator control {method} {path} failed: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def info(self) -> dict[str, Any]:
        return self._call("GET", "/info")

    def now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self._call("GET", "/clock")["now"].replace("Z", "+00:00"))

    def set_clock(self, at: dt.datetime, *, freeze: bool = False) -> None:
        self._call("POST", "/clock", {"set": at.isoformat(), "freeze": freeze})

    def move_clock(self, delta: dt.timedelta) -> None:
        """Move the org's clock by `delta` (negative moves it back), frozen or not."""
        self._call("POST", "/clock", {"move_seconds": delta.total_seconds()})

    def skew_clock(self, delta: dt.timedelta) -> None:
        """Run the org's clock `delta` ahead of this host's clock, or behind it when `delta` is negative
        (an org whose time differs from the client's), ticking in real time and unfrozen."""
        self._call("POST", "/clock", {"skew_seconds": delta.total_seconds()})

    def freeze_clock(self) -> None:
        self._call("POST", "/clock", {"freeze": True})

    def unfreeze_clock(self) -> None:
        self._call("POST", "/clock", {"unfreeze": True})

    def inject_error(self, path: str, status: int, error_code: str, message: str | None = None, *,
                     count: int = 1, method: str | None = None, after: int = 0) -> None:
        """The next `count` requests whose path matches the regex get this Salesforce error, once `after`
        matching requests have gone through."""
        self._call("POST", "/faults", {"kind": "error", "path": path, "status": status, "error_code": error_code,
                                       "message": message, "count": count, "method": method, "after": after})

    def cut_connection(self, path: str, *, count: int = 1, after: int = 0) -> None:
        """The next `count` matching responses stop half-way and the connection closes, once `after` matching
        requests have gone through whole (cut page 3 of a Bulk result: after=2)."""
        self._call("POST", "/faults", {"kind": "cut", "path": path, "count": count, "after": after})

    def lock_rows(self, object_name: str, count: int = 1) -> None:
        """The next `count` record writes to the object fail with UNABLE_TO_LOCK_ROW (retryable)."""
        self._call("POST", "/faults/row-locks", {"object": object_name, "count": count})

    def fail_bulk_jobs(self, object_name: str, message: str, *, count: int = 1, job_type: str | None = None) -> None:
        """The next `count` Bulk 2.0 jobs on the object (job_type V2Ingest or V2Query, else either) end Failed
        with `message` as errorMessage; an ingest job's rows all come back as unprocessed records."""
        self._call("POST", "/faults/bulk-jobs", {"object": object_name, "message": message, "count": count,
                                                 "job_type": job_type})

    def deactivate_user(self, user_id: str) -> None:
        """User.IsActive = false: writes giving the user as OwnerId then fail with INACTIVE_OWNER_OR_USER."""
        self._call("POST", f"/users/{user_id}/active", {"active": False})

    def activate_user(self, user_id: str) -> None:
        self._call("POST", f"/users/{user_id}/active", {"active": True})

    def update_record(self, object_name: str, record_id: str, values: dict[str, Any]) -> None:
        """Update a record as someone else in the org would. Changing a parent this way changes its children's
        formula fields without moving the children's LastModifiedDate or SystemModstamp."""
        self._call("PATCH", f"/records/{object_name}/{record_id}", values)

    def set_duplicate_rules(self, rules: dict[str, str]) -> None:
        """Which objects have an active duplicate rule and whether it blocks or alerts: {"Lead": "Block", ...};
        an object left out has none."""
        self.update_settings(duplicate_rules=rules)

    def add_latency(self, path: str, milliseconds: int, *, count: int = -1) -> None:
        self._call("POST", "/faults", {"kind": "latency", "path": path, "latency_ms": milliseconds, "count": count})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def expire_sessions(self) -> int:
        return self._call("POST", "/sessions/expire")["expired"]

    def exhaust_api_limit(self) -> None:
        self._call("POST", "/limits", {"exhaust": True})

    def set_api_limit(self, maximum: int) -> dict[str, int]:
        return self._call("POST", "/limits", {"max": maximum})

    def update_settings(self, **settings: Any) -> None:
        self._call("POST", "/settings", settings)

    def delete_field(self, object_name: str, field: str) -> None:
        self._call("POST", "/schema", {"op": "delete_field", "object": object_name, "field": field})

    def rename_field(self, object_name: str, field: str, new_name: str) -> None:
        self._call("POST", "/schema", {"op": "rename_field", "object": object_name, "field": field, "new_name": new_name})

    def add_field(self, object_name: str, field: str, field_type: str = "string", label: str = "", *,
                  values: tuple[str, ...] = (), restricted: bool = False) -> None:
        """Add a custom field; a picklist takes its `values`, which `restricted` makes the only ones accepted."""
        self._call("POST", "/schema", {"op": "add_field", "object": object_name, "field": field, "type": field_type,
                                       "label": label, "values": list(values), "restricted": restricted})

    def hard_delete(self, object_name: str, ids: list[str]) -> int:
        return self._call("POST", f"/records/{object_name}/hard-delete", {"ids": ids})["deleted"]

    def late_commit(self, object_name: str, last_modified: dt.datetime, values: dict[str, Any],
                    record_id: str | None = None) -> str:
        body = {"last_modified": last_modified.isoformat(), "values": values, "id": record_id}
        return self._call("POST", f"/records/{object_name}/late-commit", body)["id"]

    def api_calls(self) -> dict[str, Any]:
        """{"by_endpoint": {...}, "used": N, "max": M}"""
        return self._call("GET", "/api-calls")

    def reset_api_calls(self) -> None:
        self._call("DELETE", "/api-calls")

    def force_gap_event(self, object_name: str, ids: list[str], change_type: str = "GAP_UPDATE") -> int:
        """Emit a GAP_* change event for these records; returns its replay id (an int)."""
        body = {"object": object_name, "ids": ids, "change_type": change_type}
        return self._call("POST", "/change-events/gap", body)["replay_id"]

    def force_overflow_event(self, object_name: str) -> int:
        return self._call("POST", "/change-events/overflow", {"object": object_name})["replay_id"]

    def cut_pubsub_streams(self) -> None:
        """End every open Pub/Sub Subscribe stream (UNAVAILABLE, as when Salesforce drops one)."""
        self._call("POST", "/pubsub/cut")
