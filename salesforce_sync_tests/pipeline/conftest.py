"""Fixtures shared by pipeline tests that define their own `org`: the store on each backend, and the start
of the hour the org's data was generated in (an integration starting there reads all of it in its first window)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import hour_floor


@pytest.fixture
def store(store_url: str) -> Iterator[AudienceStore]:
    with AudienceStore(store_url) as store:
        yield store


@pytest.fixture
def start(org: EmulatedOrg) -> datetime:
    return hour_floor(org.control.now())
