"""pytest fixtures serving emulated orgs: `pytest_plugins = ["salesforce_sync.emulator.pytest_plugin"]`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from salesforce_sync.emulator.harness import EmulatedOrg


@pytest.fixture
def emulated_org_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmulatedOrg]]:
    """Start orgs with any seed, counts or state file; all are stopped when the test ends."""
    started: list[EmulatedOrg] = []

    def start(**kwargs: Any) -> EmulatedOrg:
        kwargs.setdefault("tls_dir", tmp_path_factory.mktemp("tls"))
        org = EmulatedOrg(**kwargs).start()
        started.append(org)
        return org

    yield start
    for org in started:
        org.stop()


@pytest.fixture
def emulated_org(emulated_org_factory: Callable[..., EmulatedOrg]) -> EmulatedOrg:
    """A small in-memory org (200 Leads, 100 Contacts, 50 CampaignMembers), fresh for each test."""
    return emulated_org_factory()
