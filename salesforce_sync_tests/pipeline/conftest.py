"""Fixtures of the pipeline tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from salesforce_sync.store import AudienceStore


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AudienceStore]:
    """The store the sync command writes to (AUDIENCE_STORE_URL), with its local state under tmp_path.
    (Tests of the plain pipeline, which need no command, override it with a bare store.)"""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with AudienceStore(store_url) as store:
        yield store
