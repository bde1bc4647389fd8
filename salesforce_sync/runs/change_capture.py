"""An integration's change-event subscription, in plain Python: read the events after the stored replay id in
batches (debounce window, size cap, flow control), surviving stream cuts (reconnect with backoff) and expired
access tokens (re-authenticate, resubscribe where it stopped); turn a batch into a micro-sync plan; and `listen`,
the whole loop in one process (tests, the benchmark). Under Dagster the sensor drains one batch per tick and a
run applies it (dagster_defs/change_capture.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc

from salesforce_sync.config.models import PUBSUB_ENDPOINT, IntegrationConfig
from salesforce_sync.runs.health import SyncDeferred
from salesforce_sync.runs.lease import LeaseHolder, acquire_lease, cli_holder
from salesforce_sync.runs.micro_sync import MicroSyncResult, apply_micro_sync, settle_without_work
from salesforce_sync.runs.window import related_parents
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.pubsub import MAX_BATCH, ChangeEvent, FetchBatch, PubSubClient, PubSubError
from salesforce_sync.store import AudienceStore
from salesforce_sync.sync.change_events import MicroSyncPlan, batch_ready, plan_micro_sync

log = logging.getLogger(__name__)

REPLAY_EXPIRED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
AUTH_ERRORS = ("service.auth.error", "service.auth.refresh.invalid", "service.auth.headers.invalid")
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class ReplayExpired(Exception):
    """The stored replay id is no longer retained (older than 72 hours, or unknown to the org)."""


@dataclass
class ChangeBatch:
    """Events read in one go, and the replay id that resumes after them (None: no position known yet); `heard`:
    the subscription answered or is open without error."""

    events: list[ChangeEvent]
    position: bytes | None
    heard: bool
    error: str | None = None


def pubsub_target(integration: IntegrationConfig, client: SalesforceClient) -> str:
    """The Pub/Sub API endpoint: the embedded emulator's own, the configured one, else Salesforce's."""
    return client.pubsub_url or integration.change_capture.pubsub_url or PUBSUB_ENDPOINT


class ChangeFeed:
    """An open subscription to the integration's change-event topic, from `after` (None: from now on).

    A reader thread puts each FetchResponse on a queue, so a batch can end on its debounce window even when the
    server is silent. Events are asked for as they are used (flow control: at most 100 outstanding)."""

    def __init__(self, client: SalesforceClient, integration: IntegrationConfig, *, after: bytes | None) -> None:
        self.client, self.integration = client, integration
        self.topic = integration.change_capture.topic
        self.position = after  # after the last event handed out (or the last keepalive's latest replay id)
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue()
        self._leftover: list[ChangeEvent] = []
        self._leftover_position: bytes | None = None
        self._pubsub: PubSubClient | None = None
        self._subscription = None
        self._failures = 0
        self._tenant: str | None = None

    # ---- the stream ----------------------------------------------------------------------------

    def _open(self) -> None:
        token = self.client.token
        if self._tenant is None:
            self._tenant = self.client.identity()["organization_id"]
        verify = self.client.http.verify
        self._pubsub = PubSubClient(pubsub_target(self.integration, self.client), access_token=token.access_token,
                                    instance_url=token.instance_url, tenant_id=self._tenant,
                                    ca_file=verify if isinstance(verify, str) else None)
        preset = "CUSTOM" if self.position else "LATEST"
        subscription = self._pubsub.subscribe(self.topic, replay_preset=preset, replay_id=self.position or b"",
                                              batch_size=min(MAX_BATCH, self.integration.change_capture.max_batch))
        self._subscription = subscription
        self._queue = queue.Queue()
        threading.Thread(target=self._read, args=(subscription, self._queue), daemon=True,
                         name=f"change-feed-{self.integration.id}").start()

    @staticmethod
    def _read(subscription: object, out: queue.Queue[tuple[str, object]]) -> None:
        try:
            for batch in subscription:  # type: ignore[attr-defined]
                out.put(("batch", batch))
            out.put(("end", None))
        except Exception as err:  # noqa: BLE001 - a PubSubError or a lost connection: the feed reconnects
            out.put(("error", err))

    def _drop_stream(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._pubsub is not None:
            self._pubsub.close()
        self._subscription = self._pubsub = None

    def close(self) -> None:
        self._drop_stream()

    def __enter__(self) -> ChangeFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recover(self, error: object, deadline: float) -> str:
        """After a failed or ended stream: re-authenticate on an auth error, wait a backoff, reopen later."""
        self._drop_stream()
        if isinstance(error, PubSubError):
            if error.error_code == REPLAY_EXPIRED:
                raise ReplayExpired(f"integration {self.integration.id!r}: the stored replay id is no longer "
                                    f"retained ({error})")
            if error.status in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                                grpc.StatusCode.INVALID_ARGUMENT):
                raise error
            if error.status == grpc.StatusCode.UNAUTHENTICATED or error.error_code.endswith(AUTH_ERRORS):
                self.client.authenticate()  # the access token expired: a fresh one, then resubscribe at once
                self._failures += 1
                if self._failures == 1:
                    return str(error)
        wait = BACKOFF_SECONDS[min(self._failures, len(BACKOFF_SECONDS) - 1)]
        self._failures += 1
        log.warning("integration %r: change-event stream ended (%s); resubscribing in %.1f s", self.integration.id,
                    error or "closed by the server", wait)
        time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
        return str(error or "stream closed")

    # ---- batches -------------------------------------------------------------------------------

    def next_batch(self, *, max_seconds: float, stop: threading.Event | None = None,
                   return_when_idle: bool = False) -> ChangeBatch:
        """Events until the batch is ready (max_batch of them, or a debounce window without a new one), or
        `max_seconds` passed; the position to store once they are applied. `return_when_idle`: also return after a
        debounce window without any event (a sensor tick takes what has arrived). Raises ReplayExpired."""
        settings = self.integration.change_capture
        deadline = time.monotonic() + max_seconds
        events, self._leftover = self._leftover[:settings.max_batch], self._leftover[settings.max_batch:]
        if events:
            self.position = events[-1].replay_id if self._leftover else self._leftover_position
        heard, error = bool(events), None
        last_arrival = time.monotonic()
        while not batch_ready(len(events), time.monotonic() - last_arrival, debounce_seconds=settings.debounce_seconds,
                              max_batch=settings.max_batch):
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop.is_set()):
                break
            if (return_when_idle and not events and self._subscription is not None
                    and now - last_arrival >= settings.debounce_seconds):
                break
            if self._subscription is None:
                try:
                    self._open()
                except (PubSubError, grpc.RpcError) as err:
                    error = self._recover(err, deadline)
                    continue
            wait = deadline - now
            if events or return_when_idle:
                wait = min(wait, settings.debounce_seconds - (now - last_arrival))
            try:
                kind, item = self._queue.get(timeout=max(0.01, min(wait, 0.5)))
            except queue.Empty:
                continue
            if kind != "batch":
                error = self._recover(item, deadline)
                continue
            self._failures = 0
            batch: FetchBatch = item  # type: ignore[assignment]
            heard = True
            room = settings.max_batch - len(events)
            if batch.events:
                last_arrival = time.monotonic()
                events += batch.events[:room]
                self._leftover = batch.events[room:]
                self._leftover_position = batch.latest_replay_id or batch.events[-1].replay_id
            if self._leftover:
                self.position = events[-1].replay_id
            elif batch.latest_replay_id:
                self.position = batch.latest_replay_id
            elif batch.events:
                self.position = batch.events[-1].replay_id
        # An open stream that has not failed counts as heard: an idle one answers only every few minutes.
        return ChangeBatch(events, self.position, heard or self._subscription is not None, error)


def plan_batch(integration: IntegrationConfig, batch: ChangeBatch, *, after: bytes | None) -> MicroSyncPlan:
    """The micro-sync a batch of events asks for (see sync.change_events)."""
    objects = integration.object_types
    return plan_micro_sync(batch.events, after=after, until=batch.position, objects=objects,
                           parents={o: related_parents(integration, o) for o in objects})


def expired_plan(integration: IntegrationConfig, batch: ChangeBatch, *, after: bytes | None,
                 since: datetime) -> MicroSyncPlan:
    """After the stored replay id expired: every object re-synced by window from `since` (the last event applied),
    plus what the new subscription (from now on) already read."""
    plan = plan_batch(integration, batch, after=after)
    for object_type in integration.object_types:
        plan.resync(object_type, int(since.timestamp() * 1000))
    return plan


def resync_since(store: AudienceStore, integration: IntegrationConfig) -> datetime:
    """Where a re-sync after an expired replay id starts: the newest event applied, else when the position was
    stored, else the oldest a replay id could have reached (Salesforce keeps events 72 hours)."""
    state = store.change_capture_state(integration.id)
    known = state and (state.last_commit_at or state.applied_at)
    return known or datetime.now(UTC) - timedelta(hours=72)


def read_plan(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, *,
              max_seconds: float, feed: ChangeFeed | None = None, stop: threading.Event | None = None,
              return_when_idle: bool = False) -> tuple[MicroSyncPlan, ChangeFeed]:
    """The next batch of the integration's change events as a plan, read from the stored replay id (or from
    `feed`, kept open between batches by a long-running listener). An expired replay id gives a window re-sync
    of every object from the last event applied, and a feed from now on."""
    state = store.change_capture_state(integration.id)
    after = state.replay_id if state else None
    # An open feed is kept unless the store resumes elsewhere (a batch was not applied); with no stored position
    # yet, the feed's own (from now on) is the newer news.
    if feed is None or (after is not None and feed.position != after):
        if feed is not None:
            feed.close()
        feed = ChangeFeed(client, integration, after=after)
    try:
        batch = feed.next_batch(max_seconds=max_seconds, stop=stop, return_when_idle=return_when_idle)
        plan = plan_batch(integration, batch, after=after)
    except ReplayExpired as expired:
        log.warning("%s; re-syncing every object by window from the last event applied", expired)
        feed.close()
        feed = ChangeFeed(client, integration, after=None)
        batch = feed.next_batch(max_seconds=max_seconds, stop=stop, return_when_idle=return_when_idle)
        plan = expired_plan(integration, batch, after=after, since=resync_since(store, integration))
    if batch.heard:
        store.record_change_capture_heard(integration.id, feed.topic)
    elif batch.error:
        log.warning("integration %r: no answer from the change-event subscription: %s", integration.id, batch.error)
    return plan, feed


@dataclass
class ListenReport:
    """What `listen` did: each applied micro-sync's result."""

    results: list[MicroSyncResult] = field(default_factory=list)


def listen(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, *,
           stop: threading.Event, holder: LeaseHolder | None = None,
           on_applied: Callable[[MicroSyncResult], None] | None = None) -> ListenReport:
    """Subscribe and apply micro-syncs until `stop` is set: each batch under the integration's lease (a window
    sync and a micro-sync never overlap), the replay id stored only after its records are. A batch over the API
    budget is left unapplied (its replay id unstored) and read again after `drain_seconds`."""
    report = ListenReport()
    holder = holder or cli_holder()
    feed: ChangeFeed | None = None
    try:
        while not stop.is_set():
            plan, feed = read_plan(store, client, integration, max_seconds=integration.change_capture.drain_seconds,
                                   feed=feed, stop=stop, return_when_idle=True)
            if not plan.needs_work:
                settle_without_work(store, integration, plan)
                continue
            try:
                with acquire_lease(store, integration.id, holder, wait=integration.lease_wait) as lease:
                    result = apply_micro_sync(store, client, integration, plan, lease=lease)
            except SyncDeferred as deferred:  # over the API budget: the events wait in Salesforce, read again later
                log.warning("%s", deferred)
                stop.wait(integration.change_capture.drain_seconds)
                continue
            report.results.append(result)
            if on_applied is not None:
                on_applied(result)
    finally:
        if feed is not None:
            feed.close()
    return report
