"""Serve an emulated org from Python: a context manager, and requests sessions that reach it the way
simple-salesforce expects to reach Salesforce."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from salesforce_sync.emulator.control import EmulatorControl, client_session, connection_info
from salesforce_sync.emulator.org import Org, OrgSettings
from salesforce_sync.emulator.pubsub.service import PubSubServer
from salesforce_sync.emulator.server import EmulatorServer

DEFAULT_COUNTS = {"Lead": 200, "Contact": 100, "CampaignMember": 50}


class SalesforceHostAdapter(HTTPAdapter):
    """Sends requests for any *.salesforce.com host to the emulator, path and query unchanged.

    simple-salesforce builds its login URLs as https://{domain}.salesforce.com, where no port fits, so a
    client that logs in by SOAP, JWT or client credentials reaches the emulator through this adapter.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.target = urlsplit(base_url)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        if (parts.hostname or "").endswith("salesforce.com"):
            # The Host header keeps the name the client addressed, so the emulator can tell login. from My Domain.
            request.headers["Host"] = parts.netloc
            request.url = urlunsplit((self.target.scheme, self.target.netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


class EmulatedOrg:
    """An org served on a free port for as long as the context lasts.

    `state_file` keeps the org in SQLite on disk so other processes see the same org; without it the org
    lives in memory and is gone when the context ends.
    """

    def __init__(self, *, seed: int = 7, counts: dict[str, int] | None = None, state_file: str | Path | None = None,
                 port: int = 0, http_port: int | None = None, tls_dir: str | Path | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        self.seed = seed
        self.counts = dict(DEFAULT_COUNTS if counts is None else counts)
        self.state_file = state_file
        self.port = port
        self.http_port = http_port
        self._tls_dir = tls_dir
        self._settings = settings or {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.org: Org | None = None
        self.server: EmulatorServer | None = None
        self.pubsub: PubSubServer | None = None

    def start(self) -> EmulatedOrg:
        if self._tls_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sf-emulator-")
            self._tls_dir = self._tmp.name
        self.org = Org.open_or_create(self.state_file, OrgSettings.for_seed(self.seed, **self._settings), self.counts)
        self.server = EmulatorServer(self.org, port=self.port, tls_dir=self._tls_dir, http_port=self.http_port).start()
        self.pubsub = PubSubServer.for_certificate(self.org, self.server.tls_cert).start()
        return self

    def stop(self) -> None:
        if self.pubsub:
            self.pubsub.stop()
        if self.server:
            self.server.stop()
        if self.org:
            self.org.close()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> EmulatedOrg:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ca_file(self) -> str:
        return self.server.ca_file

    @property
    def pubsub_url(self) -> str:
        """The Pub/Sub API's gRPC target (host:port), TLS verified by `ca_file`."""
        return self.pubsub.url

    def connection_info(self) -> dict[str, Any]:
        return {**connection_info(self.server), "pubsub_url": self.pubsub_url}

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.base_url, self.ca_file)

    def session(self) -> requests.Session:
        """A requests session that verifies the emulator's CA and routes *.salesforce.com to it."""
        session = client_session(self.ca_file)
        session.mount("https://", SalesforceHostAdapter(self.base_url))
        return session

    def access_token(self) -> str:
        """A fresh access token through the refresh-token grant, as the sync's resource gets one."""
        info = self.connection_info()
        response = self.session().post(f"{self.base_url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"]}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def simple_salesforce(self, **kwargs: Any) -> Any:
        """A simple_salesforce.Salesforce client on a fresh session (instance URL + session id)."""
        from simple_salesforce import Salesforce

        return Salesforce(instance_url=self.base_url, session_id=self.access_token(), session=self.session(), **kwargs)
