"""The Pub/Sub API as Salesforce serves it, through our client over TLS: auth metadata, flow control by
num_requested, keepalives carrying latest_replay_id, retention, error-code trailers, schemas and bitmaps."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import grpc
import pytest

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.pubsub import PubSubClient, PubSubError
from salesforce_sync_tests.emulator.pubsub_support import COUNTS, SETTINGS, collect, pubsub_client

ERROR = "sfdc.platform.eventbus.grpc."


@pytest.fixture
def org(emulated_org_factory: Any) -> EmulatedOrg:
    return emulated_org_factory(counts=COUNTS, settings=SETTINGS)


def create_leads(org: EmulatedOrg, count: int) -> list[str]:
    sf = org.simple_salesforce()
    return [sf.Lead.create({"LastName": f"Lead {i}", "Company": "Flow"})["id"] for i in range(count)]


def first_error(client: PubSubClient, topic: str, **subscribe: Any) -> PubSubError:
    with pytest.raises(PubSubError) as caught, client.subscribe(topic, **subscribe) as sub:
        next(iter(sub))
    return caught.value


def test_flow_control_delivers_no_more_than_requested(org: EmulatedOrg) -> None:
    ids = create_leads(org, 5)
    with pubsub_client(org) as client:
        with client.subscribe("/data/LeadChangeEvent", replay_preset="EARLIEST", batch_size=2,
                              auto_request=False) as sub:
            batches = iter(sub)
            received: list[str] = []
            pendings: list[int] = []
            deadline = time.monotonic() + 1.0  # several keepalive periods
            while time.monotonic() < deadline:
                batch = next(batches)
                received += [e.record_ids[0] for e in batch.events]
                pendings.append(batch.pending_num_requested)
            assert received == ids[:2]
            assert pendings[-1] == 0
            sub.request(3)
            while len(received) < 5:
                received += [e.record_ids[0] for e in next(batches).events]
        assert received == ids


def test_credit_is_capped_at_100(org: EmulatedOrg) -> None:
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents", batch_size=100,
                                                        auto_request=False) as sub:
        sub.request(80)
        keepalive = next(iter(sub))
    assert keepalive.events == [] and keepalive.pending_num_requested == 100


def test_keepalives_carry_the_latest_replay_id(org: EmulatedOrg) -> None:
    create_leads(org, 2)
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents") as sub:
        started = time.monotonic()
        keepalive = next(iter(sub))
        waited = time.monotonic() - started
    assert keepalive.events == [] and int.from_bytes(keepalive.latest_replay_id, "big") == 2
    assert 0.1 < waited < 2  # the org's keepalive interval (0.2 s here; Salesforce: within 270 s)


def test_expired_replay_id_gives_salesforce_error(org: EmulatedOrg) -> None:
    create_leads(org, 1)
    with pubsub_client(org) as client:
        with client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
            (event,) = collect(sub, 1, quiet_seconds=0.2)
        with client.subscribe("/data/ChangeEvents", replay_preset="CUSTOM", replay_id=event.replay_id) as sub:
            assert collect(sub, 0, quiet_seconds=0.2) == []  # still retained: resumes after it
        org.control.move_clock(dt.timedelta(hours=73))
        client = pubsub_client(org)  # a fresh token: the old one expired on the org's clock
        error = first_error(client, "/data/ChangeEvents", replay_preset="CUSTOM", replay_id=event.replay_id)
        assert error.status == grpc.StatusCode.INVALID_ARGUMENT
        assert error.error_code == ERROR + "subscription.fetch.replayid.corrupted"
        with client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
            assert collect(sub, 0, quiet_seconds=0.2) == []  # the expired event is gone for EARLIEST too
        client.close()


@pytest.mark.parametrize(("topic", "subscribe", "status", "suffix"), [
    ("/data/ChangeEvents", {"replay_preset": "CUSTOM"}, grpc.StatusCode.INVALID_ARGUMENT,
     "subscription.fetch.replayid.validation.failed"),
    ("/data/ChangeEvents", {"replay_preset": "CUSTOM", "replay_id": (999).to_bytes(8, "big")},
     grpc.StatusCode.INVALID_ARGUMENT, "subscription.fetch.replayid.corrupted"),
    ("/data/ChangeEvents", {"batch_size": 0}, grpc.StatusCode.INVALID_ARGUMENT,
     "subscription.fetch.requested.events.invalid"),
    ("/data/TaskChangeEvent", {}, grpc.StatusCode.NOT_FOUND, "topic.not.found"),
])
def test_bad_subscriptions_fail_with_error_code_trailer(org: EmulatedOrg, topic: str, subscribe: dict[str, Any],
                                                        status: grpc.StatusCode, suffix: str) -> None:
    with pubsub_client(org) as client:
        error = first_error(client, topic, **subscribe)
    assert error.status == status and error.error_code == ERROR + suffix
    assert "rpcId:" in str(error)


@pytest.mark.parametrize("wrong", ["accesstoken", "tenantid", "missing"])
def test_bad_credentials_are_refused(org: EmulatedOrg, wrong: str) -> None:
    info = org.connection_info()
    good = {"access_token": org.access_token(), "instance_url": org.base_url, "tenant_id": info["org_id"]}
    bad = {"accesstoken": {"access_token": "00Dxx!not-a-token"}, "tenantid": {"tenant_id": "00D000000000000AAA"},
           "missing": {"access_token": ""}}[wrong]
    with PubSubClient(info["pubsub_url"], ca_file=org.ca_file, **{**good, **bad}) as client:
        with pytest.raises(PubSubError) as caught:
            client.get_topic("/data/LeadChangeEvent")
        subscribe_error = first_error(client, "/data/LeadChangeEvent")
    suffix = "service.auth.headers.invalid" if wrong == "missing" else "service.auth.error"
    for error in (caught.value, subscribe_error):
        assert error.status == grpc.StatusCode.UNAUTHENTICATED and error.error_code == ERROR + suffix


def test_cut_ends_open_streams(org: EmulatedOrg) -> None:
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents") as sub:
        batches = iter(sub)
        next(batches)
        org.control.cut_pubsub_streams()
        with pytest.raises(PubSubError) as caught:
            for _ in range(50):
                next(batches)
    assert caught.value.status == grpc.StatusCode.UNAVAILABLE
    assert caught.value.error_code == ERROR + "service.unavailable"


def test_topic_and_schema_as_salesforce_describes_them(org: EmulatedOrg) -> None:
    with pubsub_client(org) as client:
        topic = client.get_topic("/data/AccountChangeEvent")
        schema = json.loads(client.schema_json(topic.schema_id))
    assert (topic.can_publish, topic.can_subscribe, topic.tenant_guid) == (False, True, org.connection_info()["org_id"])
    assert (schema["name"], schema["namespace"]) == ("AccountChangeEvent", "com.sforce.eventbus")
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert schema["fields"][0]["name"] == "ChangeEventHeader"
    assert fields["Name"] == ["null", "string"] and fields["CreatedDate"] == ["null", "long"]
    assert fields["BillingAddress"][1]["name"] == "Address"
    assert [f["name"] for f in fields["BillingAddress"][1]["fields"]] == [
        "Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude", "GeocodeAccuracy"]
    assert not {"Id", "IsDeleted", "SystemModstamp"} & fields.keys()


def test_header_bitmaps_are_hex_over_avro_positions(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    account = sf.Account.create({"Name": "Bits", "Phone": "1", "BillingCity": "Nantes"})["id"]
    sf.Account.update(account, {"Phone": None, "BillingCity": "Brest"})
    with pubsub_client(org) as client, client.subscribe("/data/AccountChangeEvent", replay_preset="EARLIEST") as sub:
        _, event = collect(sub, 2, quiet_seconds=0.2)
        schema = json.loads(client.schema_json(client.get_topic("/data/AccountChangeEvent").schema_id))
    raw_event = next(e for e in _raw_events(org, "/data/AccountChangeEvent"))
    header = fastavro.schemaless_reader(io.BytesIO(raw_event.event.payload), fastavro.parse_schema(schema),
                                        None)["ChangeEventHeader"]
    positions = {f["name"]: i for i, f in enumerate(schema["fields"])}
    top = (1 << positions["Phone"]) | (1 << positions["LastModifiedDate"])
    city = 1 << [f["name"] for f in schema["fields"][positions["BillingAddress"]]["type"][1]["fields"]].index("City")
    assert header["changedFields"] == [f"0x{top:X}", f"{positions['BillingAddress']}-0x{city:X}"]
    assert header["nulledFields"] == [f"0x{1 << positions['Phone']:X}"]
    assert sorted(event.changed_fields) == ["BillingAddress.City", "LastModifiedDate", "Phone"]


def _raw_events(org: EmulatedOrg, topic: str) -> list[Any]:
    """The newest event of a topic as the wire carries it (our client decodes; this checks the encoding)."""
    from salesforce_sync.salesforce.pubsub_proto import pubsub_api_pb2 as pb
    from salesforce_sync.salesforce.pubsub_proto import pubsub_api_pb2_grpc as pb_grpc

    info = org.connection_info()
    credentials = grpc.ssl_channel_credentials(Path(org.ca_file).read_bytes())
    metadata = (("accesstoken", org.access_token()), ("instanceurl", org.base_url), ("tenantid", info["org_id"]))
    with grpc.secure_channel(info["pubsub_url"], credentials) as channel:
        responses = pb_grpc.PubSubStub(channel).Subscribe(
            iter([pb.FetchRequest(topic_name=topic, replay_preset=pb.EARLIEST, num_requested=100)]), metadata=metadata)
        for response in responses:
            if response.events:
                responses.cancel()
                return list(reversed(response.events))
    return []


def test_cli_server_publishes_writes_made_through_another_process(emulated_org_factory: Any, tmp_path: Path) -> None:
    """`emulator serve` prints its pubsub_url; events of writes made through another server on the same state
    file reach its subscribers."""
    state = tmp_path / "org.sqlite"
    writer = emulated_org_factory(counts=COUNTS, state_file=state)
    command = [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0", "--state-file",
               str(state), "--tls-dir", str(tmp_path / "tls")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())
        assert info["pubsub_url"].startswith("127.0.0.1:")
        lead = writer.simple_salesforce().Lead.create({"LastName": "Elsewhere", "Company": "Other process"})["id"]
        with PubSubClient(info["pubsub_url"], access_token=writer.access_token(), instance_url=info["instance_url"],
                          tenant_id=info["org_id"], ca_file=info["ca_file"]) as client, \
                client.subscribe("/data/LeadChangeEvent", replay_preset="EARLIEST") as sub:
            event = next(sub.events())  # the first response carries it (the CLI's keepalive is Salesforce's 270 s)
        assert (event.change_type, event.record_ids, event.values["Name"]["LastName"]) == \
            ("CREATE", [lead], "Elsewhere")
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_product_stubs_are_the_emulators() -> None:
    """Both copies register one proto file in Python's descriptor pool: they must stay identical."""
    root = Path(__file__).resolve().parents[2] / "salesforce_sync"
    for name in ("pubsub_api_pb2.py", "pubsub_api_pb2_grpc.py"):
        assert (root / "salesforce" / "pubsub_proto" / name).read_bytes() == \
            (root / "emulator" / "pubsub" / name).read_bytes(), f"{name}: rerun scripts/generate_pubsub_stubs.py"
