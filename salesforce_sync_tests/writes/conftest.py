"""Fixtures of the write tests: one emulated org per module (each test writes its own records), our client on
it over TLS, and writers that go through sObject Collections or Bulk ingest."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from salesforce_sync.config.secrets import Credentials
from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.retries import RetryPolicy
from salesforce_sync.salesforce.writes import RecordWriter

FAST_RETRIES = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.05, jitter_seconds=0.01)
PATHS = {"collections": 10**9, "bulk": 1}  # bulk_threshold forcing each path


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    with EmulatedOrg(counts={"Lead": 30, "Contact": 10, "CampaignMember": 5},
                     settings={"pubsub_keepalive_seconds": 0.2}, tls_dir=tmp_path_factory.mktemp("tls")) as emulated:
        yield emulated


@pytest.fixture
def client(org: EmulatedOrg) -> SalesforceClient:
    info = org.connection_info()
    credentials = Credentials(method="refresh_token", client_id=info["client_id"], client_secret=info["client_secret"],
                              refresh_token=info["refresh_token"])
    return SalesforceClient(credentials, info["login_url"], integration="writes", ca_file=info["ca_file"],
                            retry_policy=FAST_RETRIES)


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_writer(client: SalesforceClient) -> Callable[..., RecordWriter]:
    def make(path: str, **kwargs: object) -> RecordWriter:
        return RecordWriter(client, bulk_threshold=PATHS[path], poll_seconds=0.01, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def writer(make_writer: Callable[..., RecordWriter], path: str) -> RecordWriter:
    return make_writer(path)
