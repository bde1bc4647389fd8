"""Benchmark Change Data Capture: change events delivered per second to our Pub/Sub client.

Serves an org in this process, subscribes to /data/ChangeEvents (LATEST) through our client over TLS, then
writes a burst of Leads through Bulk API 2.0 (simple-salesforce) and takes every event as it arrives (Avro
decoded, bitmaps expanded, credit renewed in batches of 100). Prints:

* live: events/s from the start of the burst to the last event delivered (write + capture + delivery);
* replay: events/s replaying the same events from EARLIEST (delivery and decoding alone).

    .venv/bin/python bench/change_events.py [--writes 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.salesforce.pubsub import PubSubClient, Subscription


def take(subscription: Subscription, count: int) -> tuple[int, float]:
    """Read until `count` events have arrived; returns (events, monotonic time of the last)."""
    received, last = 0, time.monotonic()
    for batch in subscription:
        if batch.events:
            received += len(batch.events)
            last = time.monotonic()
        if received >= count:
            break
    return received, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=10_000, help="Leads inserted in the burst")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tls_dir, EmulatedOrg(
            counts={"Lead": 100, "Contact": 50, "CampaignMember": 20}, tls_dir=tls_dir,
            settings={"pubsub_keepalive_seconds": 0.5}) as org:
        sf = org.simple_salesforce()
        info = org.connection_info()
        client = PubSubClient(info["pubsub_url"], access_token=org.access_token(), instance_url=org.base_url,
                              tenant_id=info["org_id"], ca_file=org.ca_file)
        records = [{"LastName": f"Burst {i}", "Company": "Bench", "Email": f"burst{i}@bench.test"}
                   for i in range(args.writes)]
        with client.subscribe("/data/ChangeEvents") as live:
            next(iter(live))  # the first keepalive: subscribed
            started = time.monotonic()
            writer = threading.Thread(target=lambda: sf.bulk2.Lead.insert(records=records, wait=0.1))
            writer.start()
            received, last = take(live, args.writes)
            writer.join()
            written = time.monotonic()
        live_seconds = last - started
        with client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as replay:
            replay_started = time.monotonic()
            replayed, replay_last = take(replay, args.writes)
        client.close()
    print(f"burst: {args.writes:,} Leads by Bulk 2.0 insert, written and committed in {written - started:.2f} s")
    print(f"live: {received:,} change events in {live_seconds:.2f} s = {received / live_seconds:,.0f} events/s")
    print(f"replay from EARLIEST: {replayed:,} events in {replay_last - replay_started:.2f} s = "
          f"{replayed / (replay_last - replay_started):,.0f} events/s")
    return 0 if received == replayed == args.writes else 1


if __name__ == "__main__":
    raise SystemExit(main())
