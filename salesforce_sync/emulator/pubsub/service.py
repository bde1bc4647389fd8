"""The org's Pub/Sub API server (gRPC over TLS): Subscribe, GetTopic and GetSchema on its change-event channels.

Auth by call metadata (accesstoken, instanceurl, tenantid) against the org's tokens; errors end the call with
Salesforce's gRPC status and an `error-code` trailer (`sfdc.platform.eventbus.grpc.<suffix>`). A subscription
reads the org's change-event log (change_log.py), so events written by another process sharing the state file
arrive as well.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from salesforce_sync.emulator import change_log, changes
from salesforce_sync.emulator.org import Org
from salesforce_sync.emulator.pubsub import pubsub_api_pb2 as pb
from salesforce_sync.emulator.pubsub import pubsub_api_pb2_grpc as pb_grpc
from salesforce_sync.emulator.pubsub.schemas import EventSchema

ERROR_CODE_PREFIX = "sfdc.platform.eventbus.grpc."
ALL_CHANGES_TOPIC = "/data/ChangeEvents"
MAX_PENDING = 100  # credit a subscription may hold
POLL_SECONDS = 0.02  # how often an idle subscription looks at the event log


def replay_id_bytes(position: int) -> bytes:
    return struct.pack(">Q", position)


class _Abort(Exception):
    """Ends an RPC with a gRPC status and Salesforce's error-code trailer."""

    def __init__(self, code: grpc.StatusCode, suffix: str, message: str) -> None:
        super().__init__(message)
        self.code, self.suffix, self.message = code, suffix, message


class _Credit:
    """Flow control of one subscription: credit added by FetchRequests (capped), taken by delivered events."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending = 0
        self.error: _Abort | None = None

    def add(self, requested: int) -> None:
        with self.cond:
            if requested <= 0:
                self.error = _Abort(grpc.StatusCode.INVALID_ARGUMENT, "subscription.fetch.requested.events.invalid",
                                    f"num_requested must be greater than 0, got {requested}")
            self.pending = min(self.pending + max(requested, 0), MAX_PENDING)
            self.cond.notify_all()


class PubSubService(pb_grpc.PubSubServicer):
    def __init__(self, org: Org) -> None:
        self.org = org
        self._schemas: dict[str, EventSchema] = {}  # entity -> current schema
        self._by_id: dict[str, EventSchema] = {}  # every schema served, by id
        self._lock = threading.Lock()

    # ---- helpers -------------------------------------------------------------------------------

    def _schema(self, entity: str) -> EventSchema:
        obj = self.org.object(entity)
        with self._lock:
            current = self._schemas.get(entity)
            if current is None or current.obj is not obj:
                current = self._schemas[entity] = EventSchema.build(obj)
                self._by_id[current.schema_id] = current
            return current

    def _authenticate(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        token, instance, tenant = (metadata.get(k) for k in ("accesstoken", "instanceurl", "tenantid"))
        if not (token and instance and tenant):
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "service.auth.headers.invalid",
                         "accesstoken, instanceurl and tenantid metadata are required")
        if tenant != self.org.settings.org_id or self.org.token(token, "access") is None:
            raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "service.auth.error",
                         "authentication failed: invalid or expired accesstoken, or tenantid of another org")

    def _entity(self, topic: str) -> str | None:
        """The object a topic carries (None: every tracked object); an unknown topic is refused."""
        if topic == ALL_CHANGES_TOPIC:
            return None
        for name in changes.TRACKED_OBJECTS:
            if topic == f"/data/{name}ChangeEvent" and self.org.schema.object(name) is not None:
                return name
        raise _Abort(grpc.StatusCode.NOT_FOUND, "topic.not.found", f"topic not found: {topic!r}")

    @staticmethod
    def _fail(context: grpc.ServicerContext, error: _Abort, rpc_id: str) -> None:
        context.set_trailing_metadata((("error-code", ERROR_CODE_PREFIX + error.suffix),))
        context.abort(error.code, f"{error.message} rpcId: {rpc_id}")

    # ---- RPCs ----------------------------------------------------------------------------------

    def GetTopic(self, request: pb.TopicRequest, context: grpc.ServicerContext) -> pb.TopicInfo:  # noqa: N802
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            entity = self._entity(request.topic_name)
        except _Abort as error:
            self._fail(context, error, rpc_id)
        return pb.TopicInfo(topic_name=request.topic_name, tenant_guid=self.org.settings.org_id, can_publish=False,
                            can_subscribe=True, schema_id=self._schema(entity).schema_id if entity else "",
                            rpc_id=rpc_id)

    def GetSchema(self, request: pb.SchemaRequest, context: grpc.ServicerContext) -> pb.SchemaInfo:  # noqa: N802
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            for obj in changes.tracked_objects(self.org.schema):
                self._schema(obj.name)
            with self._lock:
                schema = self._by_id.get(request.schema_id)
            if schema is None:  # the suffix Salesforce uses here is not documented
                raise _Abort(grpc.StatusCode.NOT_FOUND, "schema.not.found", f"schema not found: {request.schema_id!r}")
        except _Abort as error:
            self._fail(context, error, rpc_id)
        return pb.SchemaInfo(schema_json=schema.schema_json, schema_id=schema.schema_id, rpc_id=rpc_id)

    def Subscribe(self, request_iterator: Iterator[pb.FetchRequest],  # noqa: N802
                  context: grpc.ServicerContext) -> Iterator[pb.FetchResponse]:
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            first = next(request_iterator, None)
            if first is None:
                return
            entity = self._entity(first.topic_name)
            position = self._start(first)
            credit = _Credit()
            credit.add(first.num_requested)
            if credit.error:
                raise credit.error
            threading.Thread(target=self._read_requests, args=(request_iterator, first.topic_name, credit),
                             daemon=True, name="pubsub-requests").start()
            context.add_callback(lambda: _wake(credit))  # a cancelled call stops waiting at once
            yield from self._deliver(context, rpc_id, entity, position, credit)
        except _Abort as error:
            self._fail(context, error, rpc_id)

    # ---- subscription internals ----------------------------------------------------------------

    def _start(self, first: pb.FetchRequest) -> int:
        """The log position a new subscription starts after, from the first request's replay preset."""
        if first.replay_preset == pb.EARLIEST:
            change_log.purge_expired(self.org)
            return change_log.earliest_position(self.org)
        if first.replay_preset == pb.CUSTOM:
            if not first.replay_id:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "subscription.fetch.replayid.validation.failed",
                             "a CUSTOM replay preset needs a replay_id")
            if len(first.replay_id) != 8 or not change_log.replay_id_retained(
                    self.org, position := struct.unpack(">Q", first.replay_id)[0]):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "subscription.fetch.replayid.corrupted",
                             "the replay id is unknown or no longer retained; resubscribe from EARLIEST or LATEST")
            return position
        return change_log.latest_replay_id(self.org)

    @staticmethod
    def _read_requests(request_iterator: Iterator[pb.FetchRequest], topic: str, credit: _Credit) -> None:
        """Later FetchRequests only add credit; naming another topic is an error."""
        try:
            for request in request_iterator:
                if request.topic_name and request.topic_name != topic:
                    with credit.cond:
                        credit.error = _Abort(grpc.StatusCode.INVALID_ARGUMENT, "subscription.fetch.topic.mismatch",
                                              f"a stream subscribes to one topic: {topic!r}, not {request.topic_name!r}")
                        credit.cond.notify_all()
                    return
                credit.add(request.num_requested)
        except Exception:  # the call ended (cancelled or closed): the delivery loop sees it too
            _wake(credit)

    def _deliver(self, context: grpc.ServicerContext, rpc_id: str, entity: str | None, position: int,
                 credit: _Credit) -> Iterator[pb.FetchResponse]:
        keepalive = self.org.settings.pubsub_keepalive_seconds
        cuts = change_log.stream_cuts(self.org)
        last_sent = time.monotonic()
        while context.is_active():
            with credit.cond:
                if credit.error:
                    raise credit.error
                pending = credit.pending
            if change_log.stream_cuts(self.org) != cuts:
                raise _Abort(grpc.StatusCode.UNAVAILABLE, "service.unavailable", "the stream was closed by the server")
            if pending:
                found, position = change_log.read_changes(self.org, position, pending, entity)
                if found:
                    events = self._consumer_events(found)
                    with credit.cond:
                        credit.pending -= len(events)
                        pending = credit.pending
                    yield pb.FetchResponse(events=events, latest_replay_id=replay_id_bytes(position), rpc_id=rpc_id,
                                           pending_num_requested=pending)
                    last_sent = time.monotonic()
                    continue
            if time.monotonic() - last_sent >= keepalive:
                yield pb.FetchResponse(latest_replay_id=replay_id_bytes(position), rpc_id=rpc_id,
                                       pending_num_requested=pending)
                last_sent = time.monotonic()
            with credit.cond:
                credit.cond.wait(POLL_SECONDS)

    def _consumer_events(self, found: list[change_log.StoredChange]) -> list[pb.ConsumerEvent]:
        org_id = self.org.settings.org_id
        schemas = {entity: self._schema(entity) for entity in {change.entity for change in found}}
        events = []
        for change in found:
            schema = schemas[change.entity]
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org_id}/{change.replay_id}"))  # the same on every replay
            events.append(pb.ConsumerEvent(
                event=pb.ProducerEvent(id=event_id, schema_id=schema.schema_id, payload=schema.encode(change)),
                replay_id=replay_id_bytes(change.replay_id)))
        return events


def _wake(credit: _Credit) -> None:
    with credit.cond:
        credit.cond.notify_all()


class PubSubServer:
    """Serves one org's Pub/Sub API on 127.0.0.1 with the HTTPS server's certificate (so its CA verifies both)."""

    def __init__(self, org: Org, *, private_key_pem: bytes, certificate_chain_pem: bytes, host: str = "127.0.0.1",
                 port: int = 0, max_streams: int = 32) -> None:
        self._server = grpc.server(ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="pubsub"))
        pb_grpc.add_PubSubServicer_to_server(PubSubService(org), self._server)
        credentials = grpc.ssl_server_credentials([(private_key_pem, certificate_chain_pem)])
        self.port = self._server.add_secure_port(f"{host}:{port}", credentials)
        self.url = f"{host}:{self.port}"

    @classmethod
    def for_certificate(cls, org: Org, cert: Any, **kwargs: Any) -> PubSubServer:
        """From a trustme leaf certificate (EmulatorServer.tls_cert)."""
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        return cls(org, private_key_pem=cert.private_key_pem.bytes(), certificate_chain_pem=chain, **kwargs)

    def start(self) -> PubSubServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None).wait()
