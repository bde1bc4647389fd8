"""Shared fixtures: emulated orgs (the emulator's pytest plugin) and audience stores on SQLite and on a
throwaway PostgreSQL database. In CI (CI or SALESFORCE_SYNC_REQUIRE_POSTGRES set) an unreachable
PostgreSQL fails the run instead of skipping its tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore

pytest_plugins = ["salesforce_sync.emulator.pytest_plugin"]

POSTGRES_ADMIN_URL = os.environ.get(
    "SALESFORCE_SYNC_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


def postgres_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("SALESFORCE_SYNC_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A uniquely named database for this test session, dropped at the end (parallel runs never collide)."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"sfsync_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here but not reachable at {POSTGRES_ADMIN_URL}: {error.orig}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error.orig}")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """The URL of an empty store with its schema created, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'store.db'}"
        with AudienceStore(url) as store:
            store.create_schema()
        yield url
        return
    url = request.getfixturevalue("postgres_database_url")
    with AudienceStore(url) as store:
        store.create_schema()
    yield url
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE audience_users, sync_log, salesforce_orgs, integration_state, sync_leases, "
                                "write_back_links, write_back_snapshots, write_back_outcomes, write_back_intents, "
                                "write_back_starts, object_settings, people, person_members, people_builds, "
                                "change_capture_state"))
    engine.dispose()


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AudienceStore]:
    """The store the commands write to (AUDIENCE_STORE_URL), with the sync home's local state under tmp_path."""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with AudienceStore(store_url) as store:
        yield store


@pytest.fixture
def sf(org: EmulatedOrg) -> Salesforce:
    """simple-salesforce logged into the test's `org` (each folder says which org that is)."""
    return org.simple_salesforce()
