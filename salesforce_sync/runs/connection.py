"""Open a client for an integration: a real org through its configured login, or the embedded emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.config.secrets import Credentials, resolve_credentials
from salesforce_sync.home import sync_home
from salesforce_sync.salesforce.client import SalesforceClient


def emulator_state_file(integration: IntegrationConfig, home: Path) -> Path:
    options = integration.emulator
    if options is not None and options.state_file is not None:
        return Path(options.state_file)
    return home / "emulator" / f"{integration.id}.sqlite"


@contextlib.contextmanager
def connect(integration: IntegrationConfig, *, home: Path | None = None,
            environ: Mapping[str, str] | None = None) -> Iterator[SalesforceClient]:
    """A client for the integration's org, authenticated lazily on first use.

    `environment: emulator` serves the integration's emulated org from its state file for as long as the
    context lasts, so every Dagster run (a process of its own) sees the same org.
    """
    if integration.environment_kind != "emulator":
        credentials = resolve_credentials(integration, environ)
        ca_file = str(integration.ca_file) if integration.ca_file else None
        yield SalesforceClient(credentials, integration.login_url or "", integration=integration.id, ca_file=ca_file)
        return

    from salesforce_sync.emulator.harness import EmulatedOrg

    options = integration.emulator
    counts = {"Lead": options.leads, "Contact": options.contacts, "CampaignMember": options.campaign_members}
    with EmulatedOrg(seed=options.seed, counts=counts,
                     state_file=emulator_state_file(integration, home or sync_home(environ))) as org:
        info = org.connection_info()
        if integration.auth is not None:
            credentials = resolve_credentials(integration, environ)
        else:
            credentials = Credentials(method="refresh_token", client_id=info["client_id"],
                                      client_secret=info["client_secret"], refresh_token=info["refresh_token"])
        client = SalesforceClient(credentials, info["login_url"], integration=integration.id, ca_file=info["ca_file"])
        client.pubsub_url = info["pubsub_url"]
        yield client
