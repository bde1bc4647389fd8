"""Shared by the change-event and Pub/Sub tests: a small org with a short keepalive, our client for it, and
collecting events until the stream goes quiet."""

from __future__ import annotations

import time

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.pubsub import ChangeEvent, PubSubClient, Subscription

COUNTS = {"Lead": 20, "Contact": 10, "CampaignMember": 5}
SETTINGS = {"pubsub_keepalive_seconds": 0.2}


def pubsub_client(org: EmulatedOrg) -> PubSubClient:
    info = org.connection_info()
    return PubSubClient(info["pubsub_url"], access_token=org.access_token(), instance_url=org.base_url,
                        tenant_id=info["org_id"], ca_file=org.ca_file)


def collect(subscription: Subscription, count: int, *, quiet_seconds: float = 0.6, timeout: float = 20) -> list[ChangeEvent]:
    """Events until `count` have arrived and then nothing more for `quiet_seconds` (keepalives tick meanwhile),
    so a test sees any extra event as well."""
    events: list[ChangeEvent] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    for batch in subscription:
        events += batch.events
        if batch.events:
            quiet_since = time.monotonic()
        if len(events) >= count and time.monotonic() - quiet_since >= quiet_seconds:
            break
        if time.monotonic() > deadline:
            break
    return events
