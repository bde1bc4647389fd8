"""Fixtures of the pipeline tests: an emulated org of the test module's ORG_SEED and ORG_COUNTS (its login in the
environment), a simple-salesforce client to it, the store on each backend (also the one the sync command writes
to), and the integration's first hour. Modules that need another org or store define their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from simple_salesforce import Salesforce

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import hour_floor, set_auth_env


@pytest.fixture
def org(request: pytest.FixtureRequest, emulated_org_factory: Callable[..., EmulatedOrg],
        monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=request.module.ORG_SEED, counts=request.module.ORG_COUNTS)
    set_auth_env(monkeypatch, org)
    return org


@pytest.fixture
def sf(org: EmulatedOrg) -> Salesforce:
    return org.simple_salesforce()


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AudienceStore]:
    """The store the sync command writes to (AUDIENCE_STORE_URL), with its local state under tmp_path."""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with AudienceStore(store_url) as store:
        yield store


@pytest.fixture
def start(org: EmulatedOrg) -> datetime:
    """The integration's start: the hour the org's data was generated in, so the first window holds all of it."""
    return hour_floor(org.control.now())
