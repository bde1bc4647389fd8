"""Fixtures of the write-back tests: a small emulated org (its login in the environment), the store on each
backend, source tables written into the store's database, and an integration `crm` whose write_back a test
declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.push import PushResult
from salesforce_sync.runs.write_back import push_integration
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import (
    LEADS_ONLY,
    hour_floor,
    https_integration,
    load_config,
    set_auth_env,
)

ORG_COUNTS = {"Lead": 40, "Contact": 30, "CampaignMember": 0}


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=11, counts=ORG_COUNTS)
    set_auth_env(monkeypatch, org)
    return org


@pytest.fixture
def source(store_url: str) -> Iterator[Callable[[str, list[dict[str, Any]]], None]]:
    """Write (replace) a source table in the store's database; every table written is dropped afterwards."""
    engine = create_engine(store_url)
    written: set[str] = set()

    def write(table: str, rows: list[dict[str, Any]]) -> None:
        written.add(table)
        pd.DataFrame(rows).to_sql(table, engine, index=False, if_exists="replace")

    yield write
    with engine.begin() as connection:
        for table in written:
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
    engine.dispose()


@pytest.fixture
def integration(org: EmulatedOrg) -> Callable[..., IntegrationConfig]:
    """The integration `crm` (project acme) with the given write_back section."""

    def build(write_back: dict[str, Any], **settings: Any) -> IntegrationConfig:
        start = hour_floor(datetime.now(UTC))
        config = load_config(https_integration(org, "crm", "acme", start, objects=LEADS_ONLY,
                                               write_back=write_back, **settings))
        return config.integration("crm")

    return build


def push(store: AudienceStore, integration: IntegrationConfig, **options: Any) -> dict[str, PushResult]:
    """The integration's write-back pushed as the CLI does (holding its lease), by object."""
    results = push_integration(store, integration, holder=cli_holder(), run_id="test-push", **options)
    return {result.object_type: result for result in results}


def lead_source(table: str = "prospects", **settings: Any) -> dict[str, Any]:
    """A Lead write-back from `table` (key, email, first, last, company, stage) matched by email."""
    fields = [{"column": "first_name", "field": "FirstName"}, {"column": "last_name", "field": "LastName"},
              {"column": "company", "field": "Company"}, {"column": "email", "field": "Email"}]
    return {"table": table, "key": "person_id", "email_column": "email", "fields": fields, **settings}


def prospect(person_id: str, email: str | None, **values: Any) -> dict[str, Any]:
    return {"person_id": person_id, "email": email, "first_name": "Pat", "last_name": f"Prospect {person_id}",
            "company": "Prospect Co", **values}
