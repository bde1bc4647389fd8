"""The emulator's HTTPS transport: TLS, dispatch to the handlers' routes, sessions, API usage, faults.

Handlers live in oauth.py, soap.py, rest.py, composite.py, bulk.py and control.py; each registers its routes on a `Router`
(core.py) and none imports this module.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

from salesforce_sync.emulator import bulk, change_log, changes, composite, control, oauth, rest, soap
from salesforce_sync.emulator.core import API_VERSIONS, CONTROL_PREFIX, VERSION_PREFIX, Request, Response, Route, Router
from salesforce_sync.emulator.errors import SalesforceApiError, not_found
from salesforce_sync.emulator.org import Org

TLS_NAMES = ("127.0.0.1", "localhost", "login.salesforce.com", "test.salesforce.com", "*.salesforce.com",
             "*.my.salesforce.com", "*.sandbox.my.salesforce.com")


def _build_router() -> Router:
    router = Router()
    for module in (oauth, soap, rest, composite, bulk, control, change_log):
        module.register(router)
    return router


class _TLSThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    tls_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.tls_context is not None:
            # The handshake runs lazily in the handler thread, so one slow client cannot stall accept().
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


class EmulatorServer:
    """Serves one org over HTTPS (and optionally plain HTTP) on 127.0.0.1."""

    def __init__(self, org: Org, *, port: int = 0, tls_dir: str | Path, http_port: int | None = None,
                 host: str = "127.0.0.1") -> None:
        self.org = org
        self.router = _build_router()
        self.locators: dict[str, Any] = {}
        self.jobs: dict[str, Any] = {}
        self.state_lock = threading.Lock()
        # Renders the next query page or Bulk chunk while the client is still reading the current one.
        self.ahead = ThreadPoolExecutor(max_workers=2, thread_name_prefix="emulator-ahead")
        ca = trustme.CA(organization_name="salesforce-sync emulator")
        cert = ca.issue_cert(*TLS_NAMES)
        self.tls_cert = cert  # the Pub/Sub server serves the same certificate
        tls_dir = Path(tls_dir)
        tls_dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = str(tls_dir / "emulator-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._servers = [self._listen(host, port, context)]
        if http_port is not None:
            self._servers.append(self._listen(host, http_port, None))
        self.port = self._servers[0].server_address[1]
        self.base_url = f"https://{host}:{self.port}"
        self.http_url = f"http://{host}:{self._servers[1].server_address[1]}" if http_port is not None else None
        self._threads: list[threading.Thread] = []

    def _listen(self, host: str, port: int, context: ssl.SSLContext | None) -> _TLSThreadingServer:
        emulator = self

        class Handler(_RequestHandler):
            server_ref = emulator
            scheme = "https" if context else "http"

        server = _TLSThreadingServer((host, port), Handler)
        server.tls_context = context
        return server

    def start(self) -> EmulatorServer:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self.ahead.shutdown(wait=True, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout=5)

    # ---- dispatch ------------------------------------------------------------------------------

    def dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[Response, dict[str, Any] | None]:
        """Route one request; returns the response and a fault to act out on the wire (a cut), if any."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        cut = None
        faults = [] if path.startswith(CONTROL_PREFIX) else self.org.take_faults(method, path)
        for fault in faults:
            if fault["kind"] == "latency":
                time.sleep((fault["latency_ms"] or 0) / 1000)
            elif fault["kind"] == "cut":
                cut = fault
            else:
                return Response.json([{"message": fault["message"] or fault["error_code"] or "injected fault",
                                       "errorCode": fault["error_code"] or "UNKNOWN_EXCEPTION"}],
                                     fault["status"] or 500), cut
        version = None
        m = VERSION_PREFIX.match(path)
        if m:
            version = m.group(1)
            if version not in API_VERSIONS:
                return Response.json([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                                     404), cut
        route, params, path_known = self.router.match(method, path)
        request = Request(method, path, query, headers, body, params, self, version)
        if route is None:
            if path_known:
                return Response.json([{"errorCode": "METHOD_NOT_ALLOWED",
                                       "message": f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD"}], 405), cut
            return Response.json(not_found().body(), 404), cut
        try:
            if route.api:
                return self._api_call(route, request), cut
            return route.handler(request), cut
        except SalesforceApiError as err:
            return Response.json(err.body(), err.status), cut
        except Exception as exc:  # an emulator bug: answer as Salesforce does rather than drop the connection
            traceback.print_exc()
            return Response.json([{"errorCode": "UNKNOWN_EXCEPTION",
                                   "message": f"An unexpected error occurred: {exc!r}"}], 500), cut

    def _api_call(self, route: Route, request: Request) -> Response:
        token = request.bearer()
        if not token or self.org.token(token, "access") is None:
            return Response.json([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401)
        request.token = token
        used, maximum = self.org.api_usage()
        if used >= maximum:
            response = Response.json([{"message": "TotalRequests Limit exceeded.",
                                       "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
        else:
            used, maximum = self.org.count_call(route.name)
            try:
                with changes.call_origin(request.path, request.version, request.headers.get("Sforce-Call-Options")):
                    response = route.handler(request)
            except SalesforceApiError as err:
                response = Response.json(err.body(), err.status)
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{maximum}"
        return response


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # status line, headers and a small body leave in one segment
    server_ref: EmulatorServer
    scheme: str

    def setup(self) -> None:
        """No Nagle: a reply split over two writes would otherwise wait ~40 ms for the client's delayed ACK."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: tests and benchmarks make thousands of calls."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header reads the org's clock, as a real org's responses carry its own time."""
        return email.utils.formatdate(self.server_ref.org.now_ms() / 1000 if timestamp is None else timestamp,
                                      usegmt=True)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response, cut = self.server_ref.dispatch(self.command, self.path, self.headers, body)
        if cut and not response.body:  # nothing to cut half-way: the connection drops before the answer
            self.close_connection = True
            self._drop()
            return
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            self.wfile.write(response.body[: max(1, len(response.body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self._drop()
            return
        self.wfile.write(response.body)

    def _drop(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle
