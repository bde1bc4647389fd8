"""Request, response and routing: what every handler module (oauth, rest, bulk, soap, control) builds on.

Handlers import this module and nothing of the server; the server imports the handlers and registers
their routes, so nothing imports back up.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

from salesforce_sync.emulator.errors import SalesforceApiError

if TYPE_CHECKING:
    from salesforce_sync.emulator.org import Org

DATA = r"/services/data/v\d{2}\.\d"  # the REST API's root in a route pattern
API_VERSIONS = [f"{major}.0" for major in range(31, 63)]
CONTROL_PREFIX = "/__emulator__"  # the test-control API: outside Salesforce's paths and never faulted
VERSION_PREFIX = re.compile(r"^/services/data/v(\d{2}\.\d)(?=/|$)")

# Compact, ASCII-escaped and without the circular-reference check: a 2,000-record query page encodes in
# little more than half the time of json.dumps(ensure_ascii=False), and every JSON client reads \u escapes.
_JSON = json.JSONEncoder(check_circular=False, separators=(",", ":"))


def json_bytes(payload: Any) -> bytes:
    return _JSON.encode(payload).encode()


class Host(Protocol):
    """What a handler may use of the server that called it: the org and the state shared across requests."""

    org: Org
    base_url: str
    ca_file: str
    locators: dict[str, Any]
    jobs: dict[str, Any]
    state_lock: threading.Lock
    ahead: Executor
    router: Router  # Composite runs its subrequests through the same routes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls.json_body(json_bytes(payload), status)

    @classmethod
    def json_body(cls, body: bytes, status: int = 200) -> Response:
        """A response whose JSON is already encoded (a query page rendered ahead)."""
        return cls(status, body, {"Content-Type": "application/json;charset=UTF-8"})

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status)

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", {"Location": location})


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    params: dict[str, str]
    server: Host
    version: str | None = None
    token: str | None = None

    @property
    def org(self) -> Org:
        return self.server.org

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise SalesforceApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        for scheme in ("Bearer ", "OAuth "):
            if auth.startswith(scheme):
                return auth[len(scheme):].strip()
        return self.query.get("oauth_token")


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    api: bool


class Router:
    """Routes on method and path only; API routes live under /services/data/vNN.N and need a session."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, name: str, *, api: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, re.compile("^" + pattern + "$", re.IGNORECASE), handler, name, api))
            return handler
        return register

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, whether the path exists for another method)."""
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                path_known = True
        return None, {}, path_known
