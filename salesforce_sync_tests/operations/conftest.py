"""Fixtures of the operations tests: the environment a Dagster deployment reads (sync home, store URL,
the integration's secrets), a test Dagster instance, and an emulated org the integration logs in to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync_tests.operations.support import set_auth_env


@pytest.fixture
def app_store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SALESFORCE_SYNC_HOME and an SQLite AUDIENCE_STORE_URL inside it; returns the URL."""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'home' / 'audience.db'}"
    monkeypatch.setenv("AUDIENCE_STORE_URL", url)
    return url


@pytest.fixture
def org(emulated_org: EmulatedOrg, monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    """A small emulated org whose refresh-token login is in the environment, as a deployment's secrets are."""
    set_auth_env(monkeypatch, emulated_org)
    return emulated_org


@pytest.fixture(scope="session")
def instance() -> Iterator[dg.DagsterInstance]:
    """One persistent test instance for the session (creating one costs seconds). Every run on it ends
    before its test does, so no test sees another's run as queued or running. DAGSTER_HOME is left
    alone: other test folders read it."""
    with dg.instance_for_test(set_dagster_home=False) as test_instance:
        yield test_instance
