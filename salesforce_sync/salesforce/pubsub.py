"""A small client of Salesforce's Pub/Sub API for Change Data Capture: subscribe to a change-event channel and
get decoded change events with their replay ids.

Payloads are bare Avro datums decoded with the schema GetSchema returns (cached by schema id); the header's
field bitmaps come back as field names (`Parent.Child` for a compound's parts). Every response's
`latest_replay_id` is kept, keepalives included, so a resubscribe need never start far back.
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import grpc

from salesforce_sync.salesforce.pubsub_proto import pubsub_api_pb2 as pb
from salesforce_sync.salesforce.pubsub_proto import pubsub_api_pb2_grpc as pb_grpc

MAX_BATCH = 100  # the most events a subscription may have requested at once
REPLAY_PRESETS = {"LATEST": pb.LATEST, "EARLIEST": pb.EARLIEST, "CUSTOM": pb.CUSTOM}


class PubSubError(Exception):
    """A Pub/Sub call failed; `error_code` is Salesforce's (`sfdc.platform.eventbus.grpc.…`), '' if none."""

    def __init__(self, status: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(f"{status.name} {error_code}: {message}")
        self.status, self.error_code = status, error_code


def _pubsub_error(err: grpc.RpcError) -> PubSubError:
    trailers = dict(err.trailing_metadata() or ())
    return PubSubError(err.code(), trailers.get("error-code", ""), err.details() or "")


@dataclass(frozen=True)
class ChangeEvent:
    """One change event: its header, and the body fields the event carries (None = not carried or null; tell
    them apart with `changed_fields` and `nulled_fields`)."""

    replay_id: bytes
    entity: str
    change_type: str
    record_ids: list[str]
    changed_fields: list[str]
    nulled_fields: list[str]
    diff_fields: list[str]
    commit_timestamp: int
    commit_user: str
    transaction_key: str
    sequence_number: int
    change_origin: str
    values: dict[str, Any]


@dataclass(frozen=True)
class FetchBatch:
    """One FetchResponse: its events (none for a keepalive) and the subscription's position."""

    events: list[ChangeEvent]
    latest_replay_id: bytes
    pending_num_requested: int


class _EventSchema:
    def __init__(self, schema_json: str) -> None:
        schema = json.loads(schema_json)
        self.parsed = fastavro.parse_schema(schema)
        named: dict[str, dict[str, Any]] = {}
        self.fields = [(f["name"], _record_part_names(f["type"], named)) for f in schema["fields"]]

    def field_names(self, bitmaps: list[str]) -> list[str]:
        """`["0x<hex>", "<p>-0x<hex>", ...]` as field names: bit i of the first is top-level field i, the
        others select parts of the compound at position p."""
        names: list[str] = []
        for bitmap in bitmaps:
            position, _, bits = bitmap.rpartition("-")
            value = int(bits, 16)
            if position:
                parent, parts = self.fields[int(position)]
                names += [f"{parent}.{part}" for i, part in enumerate(parts) if value >> i & 1]
            else:
                names += [name for i, (name, _) in enumerate(self.fields) if value >> i & 1]
        return names


def _record_part_names(avro_type: Any, named: dict[str, dict[str, Any]]) -> list[str]:
    """The part names when a field's type is (a union with) a record, recording named records on the way."""
    for branch in avro_type if isinstance(avro_type, list) else [avro_type]:
        if isinstance(branch, dict) and branch.get("type") == "record":
            named[f"{branch.get('namespace', '')}.{branch['name']}"] = named[branch["name"]] = branch
            return [f["name"] for f in branch["fields"]]
        if isinstance(branch, str) and branch in named:
            return [f["name"] for f in named[branch]["fields"]]
    return []


class PubSubClient:
    """One channel to an org's Pub/Sub API endpoint (`host:port`), authenticated by call metadata."""

    def __init__(self, target: str, *, access_token: str, instance_url: str, tenant_id: str,
                 ca_file: str | None = None) -> None:
        root = Path(ca_file).read_bytes() if ca_file else None
        self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root))
        self._stub = pb_grpc.PubSubStub(self._channel)
        self._metadata = (("accesstoken", access_token), ("instanceurl", instance_url), ("tenantid", tenant_id))
        self._schemas: dict[str, _EventSchema] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> PubSubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_topic(self, topic: str) -> pb.TopicInfo:
        try:
            return self._stub.GetTopic(pb.TopicRequest(topic_name=topic), metadata=self._metadata)
        except grpc.RpcError as err:
            raise _pubsub_error(err) from None

    def schema_json(self, schema_id: str) -> str:
        try:
            return self._stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=self._metadata).schema_json
        except grpc.RpcError as err:
            raise _pubsub_error(err) from None

    def _schema(self, schema_id: str) -> _EventSchema:
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is None:
            cached = _EventSchema(self.schema_json(schema_id))
            with self._lock:
                self._schemas[schema_id] = cached
        return cached

    def decode(self, consumer_event: pb.ConsumerEvent) -> ChangeEvent:
        schema = self._schema(consumer_event.event.schema_id)
        record = fastavro.schemaless_reader(io.BytesIO(consumer_event.event.payload), schema.parsed, None)
        header = record.pop("ChangeEventHeader")
        return ChangeEvent(
            replay_id=consumer_event.replay_id, entity=header["entityName"], change_type=header["changeType"],
            record_ids=list(header["recordIds"]), changed_fields=schema.field_names(header["changedFields"]),
            nulled_fields=schema.field_names(header["nulledFields"]),
            diff_fields=schema.field_names(header["diffFields"]), commit_timestamp=header["commitTimestamp"],
            commit_user=header["commitUser"], transaction_key=header["transactionKey"],
            sequence_number=header["sequenceNumber"], change_origin=header["changeOrigin"], values=record)

    def subscribe(self, topic: str, *, replay_preset: str = "LATEST", replay_id: bytes = b"",
                  batch_size: int = MAX_BATCH, auto_request: bool = True) -> Subscription:
        """Open a Subscribe stream. It asks for `batch_size` events and, with `auto_request`, asks again each time
        they have all arrived; without it, more come only after `Subscription.request`."""
        if replay_preset not in REPLAY_PRESETS:
            raise ValueError(f"replay_preset must be one of {sorted(REPLAY_PRESETS)}, not {replay_preset!r}")
        first = pb.FetchRequest(topic_name=topic, replay_preset=REPLAY_PRESETS[replay_preset], replay_id=replay_id,
                                num_requested=batch_size)
        return Subscription(self, first, auto_request)


class Subscription:
    """An open Subscribe stream; iterate it for FetchBatches (keepalives included), or `events()` for events."""

    def __init__(self, client: PubSubClient, first: pb.FetchRequest, auto_request: bool) -> None:
        self._client = client
        self._topic, self._batch_size, self._auto_request = first.topic_name, first.num_requested, auto_request
        self._requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        self._outstanding = first.num_requested
        self._requests.put(first)
        self._call = client._stub.Subscribe(self._request_stream(), metadata=client._metadata)
        self.latest_replay_id = b""

    def _request_stream(self) -> Iterator[pb.FetchRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def request(self, num_requested: int) -> None:
        """Ask for more events (the server keeps at most 100 requested)."""
        self._outstanding += num_requested
        self._requests.put(pb.FetchRequest(topic_name=self._topic, num_requested=num_requested))

    def __iter__(self) -> Iterator[FetchBatch]:
        try:
            for response in self._call:
                events = [self._client.decode(event) for event in response.events]
                self._outstanding -= len(events)
                self.latest_replay_id = response.latest_replay_id or self.latest_replay_id
                if self._auto_request and self._outstanding <= 0:
                    self.request(self._batch_size)
                yield FetchBatch(events, response.latest_replay_id, response.pending_num_requested)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise _pubsub_error(err) from None

    def events(self) -> Iterator[ChangeEvent]:
        for batch in self:
            yield from batch.events

    def close(self) -> None:
        self._call.cancel()
        self._requests.put(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
