"""Fixtures of the operator-command tests: an emulated org reached by its https:// URL (as a real org would
be), a config file, and the environment the CLI reads (home, store URL, config path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import CLIENT_ID_ENV, CLIENT_SECRET_ENV, REFRESH_TOKEN_ENV


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """One small in-memory org per test module (200 Leads, 100 Contacts, 50 CampaignMembers, a few deleted)."""
    started = EmulatedOrg(tls_dir=tmp_path_factory.mktemp("tls")).start()
    yield started
    started.stop()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SALESFORCE_SYNC_HOME with no store URL and no secrets set; returns the home folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(home))
    for name in ("AUDIENCE_STORE_URL", CLIENT_ID_ENV, CLIENT_SECRET_ENV, REFRESH_TOKEN_ENV):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: Path) -> Callable[[str], Path]:
    """Write integrations.yaml and point SALESFORCE_SYNC_CONFIG at it."""

    def write(text: str) -> Path:
        path = tmp_path / "integrations.yaml"
        path.write_text(text)
        monkeypatch.setenv("SALESFORCE_SYNC_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def store(cli_env: Path) -> Iterator[AudienceStore]:
    """The default SQLite store under the test's sync home, which the CLI reads too."""
    opened = AudienceStore(f"sqlite:///{cli_env / 'audience.db'}")
    opened.create_schema()
    yield opened
    opened.close()
