"""Resources: the Salesforce connections of a run, and the audience store."""

import contextlib
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.home import sync_home
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore


class SalesforceResource(dg.ConfigurableResource):
    """Opens one client per integration for the whole step, so the IO manager can keep streaming
    after the asset body returns; closes them (and any embedded emulator) when the step ends.
    Secrets are read from the environment variables the integration names, at run time."""

    home: str | None = None

    _stack: contextlib.ExitStack | None = PrivateAttr(default=None)
    _clients: dict[str, SalesforceClient] = PrivateAttr(default_factory=dict)
    _log: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._stack = contextlib.ExitStack()
        self._clients = {}
        self._log = context.log  # retry warnings go to the run's log

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stack is not None:
            self._stack.close()

    def client(self, integration: IntegrationConfig) -> SalesforceClient:
        if integration.id not in self._clients:
            if self._stack is None:
                self._stack = contextlib.ExitStack()
            home = Path(self.home) if self.home else sync_home()
            client = self._stack.enter_context(connect(integration, home=home))
            if self._log is not None:
                client.log = self._log
            self._clients[integration.id] = client
        return self._clients[integration.id]


class AudienceStoreResource(dg.ConfigurableResource):
    """The audience store at `url` (an SQLAlchemy URL; from AUDIENCE_STORE_URL in production)."""

    url: str

    def open(self) -> AudienceStore:
        store = AudienceStore(self.url)
        store.create_schema()
        return store
