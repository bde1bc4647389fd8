"""Helpers of the operator-command tests: config text for an emulated org, app credentials, store chunks,
and a full sync through the plain pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.window import SyncWindow, apply_window, plan_window
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore, external_ids

PROJECT = "acme"
CLIENT_ID_ENV = "CRM_CLIENT_ID"
CLIENT_SECRET_ENV = "CRM_CLIENT_SECRET"
REFRESH_TOKEN_ENV = "CRM_REFRESH_TOKEN"

LEAD_RULES = """
        sync_rules:
          match: all
          rules:
            - {field: Email, operator: is_set}
            - {field: Status, operator: not_equals, value: Closed - Not Converted}
        field_mappings: []"""


def emulator_integration(org: EmulatedOrg, integration_id: str = "crm", project: str = PROJECT, *,
                         objects: str = "      Lead:" + LEAD_RULES, start: str = "2026-11-01", extra: str = "") -> str:
    """YAML of an integration that logs in to the emulator by its URL with a refresh token from the environment."""
    return f"""
  - id: {integration_id}
    project: {project}
    environment: {org.base_url}
    ca_file: {org.ca_file}
    auth:
      method: refresh_token
      client_id_env: {CLIENT_ID_ENV}
      client_secret_env: {CLIENT_SECRET_ENV}
      refresh_token_env: {REFRESH_TOKEN_ENV}
    start: {start}
{extra}    objects:
{objects}
"""


def config_text(*integrations: str, projects: tuple[str, ...] = (PROJECT,)) -> str:
    return f"projects: [{', '.join(projects)}]\nintegrations:" + "".join(integrations)


def set_app_credentials(monkeypatch: pytest.MonkeyPatch, org: EmulatedOrg, *, refresh_token: bool) -> None:
    """The connected app's id and secret (and, unless connect is to supply it, the org's refresh token)."""
    info: dict[str, Any] = org.connection_info()
    monkeypatch.setenv(CLIENT_ID_ENV, info["client_id"])
    monkeypatch.setenv(CLIENT_SECRET_ENV, info["client_secret"])
    if refresh_token:
        monkeypatch.setenv(REFRESH_TOKEN_ENV, info["refresh_token"])


def people(integration_id: str, object_type: str, salesforce_ids: list[str], *, deleted: list[bool]) -> pd.DataFrame:
    """A store chunk of minimal people, as the mapping layer would hand it to the store."""
    ids = pd.Series(salesforce_ids, dtype=object)
    return pd.DataFrame({
        "external_id": external_ids(integration_id, pd.Series([object_type] * len(ids), dtype=object), ids),
        "salesforce_id": ids,
        "object_type": object_type,
        "email": [f"{sf_id.lower()}@example.com" for sf_id in salesforce_ids],
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": None,
        "properties": [{} for _ in salesforce_ids],
        "unsubscribed": None,
        "deleted": deleted,
        "sf_modified_at": pd.to_datetime(["2026-11-20T10:00:00Z"] * len(ids), utc=True),
    })


def full_sync(integration: IntegrationConfig, store: AudienceStore) -> None:
    """A full sync of every object through the production path (login, preflight, plan, apply), one window
    from the integration's start to tomorrow, so every record the org holds now is read."""
    window = SyncWindow(integration.start, datetime.now(UTC) + timedelta(days=1), first=True, full=True)
    with connect(integration) as client:
        for object_type in integration.object_types:
            describes = preflight(client, integration, object_type)
            apply_window(store, plan_window(client, integration, object_type, window, describes), run_id="full-sync")
