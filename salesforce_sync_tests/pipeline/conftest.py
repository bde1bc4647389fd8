"""Fixtures of the pipeline tests: an emulated org of the test module's ORG_SEED and ORG_COUNTS (its login in the
environment), a simple-salesforce client to it, the store on each backend (also the one the sync command writes
to), and the integration's first hour. Modules that need another org or store define their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync_tests.pipeline.support import hour_floor, set_auth_env


@pytest.fixture
def org(request: pytest.FixtureRequest, emulated_org_factory: Callable[..., EmulatedOrg],
        monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=request.module.ORG_SEED, counts=request.module.ORG_COUNTS)
    set_auth_env(monkeypatch, org)
    return org


@pytest.fixture
def start(org: EmulatedOrg) -> datetime:
    """The integration's start: the hour the org's data was generated in, so the first window holds all of it."""
    return hour_floor(org.control.now())
