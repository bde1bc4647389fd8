"""Fixtures: an AudienceStore on a SQLite file and on a throwaway PostgreSQL database, and a chunk builder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from salesforce_sync.store import AudienceStore, external_ids

POSTGRES_ADMIN_URL = os.environ.get(
    "SALESFORCE_SYNC_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
INTEGRATION = "int1"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A uniquely named database for this test session, dropped at the end (parallel runs never collide)."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"store_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        if os.environ.get("CI"):
            raise
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
        connection.execute(text("TRUNCATE audience_users, sync_log, salesforce_orgs, integration_state"))
    engine.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[AudienceStore]:
    with AudienceStore(store_url) as opened:
        yield opened


@pytest.fixture
def make_chunk() -> Callable[..., pd.DataFrame]:
    """Build a valid chunk of Leads (or another object) from per-row overrides."""

    def build(
        salesforce_ids: list[str],
        *,
        modified: str | list[str] = "2024-05-01T10:00:00Z",
        deleted: bool | list[bool] = False,
        object_type: str = "Lead",
        integration_id: str = INTEGRATION,
        **columns: Any,
    ) -> pd.DataFrame:
        count = len(salesforce_ids)
        ids = pd.Series(salesforce_ids, dtype=object)
        frame = pd.DataFrame(
            {
                "external_id": external_ids(integration_id, pd.Series([object_type] * count, dtype=object), ids),
                "salesforce_id": ids,
                "object_type": object_type,
                "email": [f"{sf_id.lower()}@example.com" for sf_id in salesforce_ids],
                "first_name": "Ada",
                "last_name": "Lovelace",
                "phone": None,
                "properties": [{"Company": "Acme"} for _ in salesforce_ids],
                "unsubscribed": None,
                "deleted": deleted,
                "sf_modified_at": pd.to_datetime(
                    modified if isinstance(modified, list) else [modified] * count, utc=True, format="ISO8601"
                ),
            }
        )
        for name, values in columns.items():
            frame[name] = values
        return frame

    return build
