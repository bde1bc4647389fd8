"""The org's clock as its responses tell it (the HTTP `Date` header), compared with this host's.

Salesforce stamps LastModifiedDate with its own clock while the sync cuts windows by the host's: an org
clock behind the host's would stamp records into windows already read. Watching every response of a
client costs nothing and needs no extra API call.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from salesforce_sync.salesforce.client import SalesforceClient

DATE_RESOLUTION = timedelta(seconds=1)
"""`Date` counts whole seconds: skews within this are noise."""
HALF_SECOND = DATE_RESOLUTION / 2
"""`Date` truncates to whole seconds: the org's time was half a second later on average."""
MIN_WARNED_SKEW = timedelta(seconds=5)
"""Below this the header's whole seconds and the network's latency make skew indistinguishable from noise."""


class OrgClock:
    """The latest skew seen on a client's responses: org time minus host time (positive: org ahead)."""

    def __init__(self) -> None:
        self.skew: timedelta | None = None
        self.observed_at: datetime | None = None

    def observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        header = response.headers.get("Date")
        if not header:
            return
        try:
            org_time = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if org_time.tzinfo is None:
            return
        host_time = datetime.now(UTC)
        self.skew = org_time + HALF_SECOND - host_time
        self.observed_at = host_time

    def org_time(self, host_time: datetime) -> datetime:
        """The org's time at a host time (the host's own when no response has been seen)."""
        return host_time + (self.skew or timedelta(0))


_CLOCKS: weakref.WeakKeyDictionary[SalesforceClient, OrgClock] = weakref.WeakKeyDictionary()


def org_clock(client: SalesforceClient) -> OrgClock:
    """The clock watching this client's responses, installed on first use."""
    clock = _CLOCKS.get(client)
    if clock is None:
        clock = _CLOCKS[client] = OrgClock()
        client.http.hooks["response"].append(clock.observe)
    return clock


def skew_limit(overlap: timedelta) -> timedelta:
    """Skew worth a warning: half the overlap re-read by every window (late commits use the rest)."""
    return max(overlap / 2, MIN_WARNED_SKEW)


def skew_problem(integration_id: str, skew: timedelta, overlap: timedelta) -> str | None:
    """A sentence about a skew beyond `skew_limit`, or None."""
    if abs(skew) <= skew_limit(overlap):
        return None
    direction = "behind" if skew < timedelta(0) else "ahead of"
    return (f"integration {integration_id!r}: the Salesforce org's clock is {abs(skew.total_seconds()):.0f} s "
            f"{direction} this host's, more than half the {overlap.total_seconds() / 60:.0f}-minute overlap; "
            f"windows follow the org's clock, but fix the host's time (NTP)")
