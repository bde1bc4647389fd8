"""A small org shared by the write tests of one module (each test writes its own records), and a client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from salesforce_sync.emulator import EmulatedOrg


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    with EmulatedOrg(counts={"Lead": 40, "Contact": 20, "CampaignMember": 5},
                     tls_dir=tmp_path_factory.mktemp("tls")) as emulated:
        yield emulated
