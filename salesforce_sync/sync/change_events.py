"""Change events grouped into a micro-sync plan (pure, no I/O): per synced object the record Ids to read again, the
records to read through a changed parent, and the objects to re-sync by window when the events cannot say which
records changed (an overflow, a gap without usable Ids).

What a micro-sync does with the plan is in `runs/micro_sync.py`. Our own write-back's changes (changeOrigin
`...;client=salesforce-sync`) are left out: they cause no read and no store write here, and the window sync applies
whatever they changed (see the README, "Near-real-time").
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from salesforce_sync.config.models import OWN_CLIENT_NAME

OVERFLOW = "GAP_OVERFLOW"
DELETES = frozenset({"DELETE", "GAP_DELETE"})


class ChangeHeader(Protocol):
    """What planning needs of a change event (salesforce.pubsub.ChangeEvent has it)."""

    replay_id: bytes
    entity: str
    change_type: str
    record_ids: list[str]
    commit_timestamp: int
    change_origin: str


def is_own_change(change_origin: str) -> bool:
    """Whether a changeOrigin (`com/salesforce/api/rest/62.0;client=salesforce-sync`) names our write-back."""
    options = (part.strip().split("=", 1) for part in change_origin.split(";")[1:] if "=" in part)
    return any(key.strip() == "client" and value.strip() == OWN_CLIENT_NAME for key, value in options)


@dataclass
class ObjectChanges:
    """What one synced object must read again: its own records by Id (created, updated, deleted or undeleted
    alike: the read says what they are now), its records whose parent changed (by relationship), and a window
    re-sync from `resync_since_ms` (epoch ms) when events could not name the records."""

    ids: list[str] = field(default_factory=list)
    via_parent: dict[str, list[str]] = field(default_factory=dict)
    resync_since_ms: int | None = None


@dataclass
class MicroSyncPlan:
    """The work a batch of change events asks for, and where the subscription resumes once it is applied.

    `after` is the replay id the batch was read from (None: the subscription had no stored position) and `until`
    the replay id to store when applied (None: no position known, the subscription starts from now on next time). `commits_ms` are the commit times of the events that asked for work
    (end-to-end lag); `own` counts our own write-back's events left out, `ignored` events of objects nothing
    here reads."""

    after: bytes | None
    until: bytes | None
    objects: dict[str, ObjectChanges] = field(default_factory=dict)
    commits_ms: list[int] = field(default_factory=list)
    events: int = 0
    own: int = 0
    ignored: int = 0

    @property
    def needs_work(self) -> bool:
        return bool(self.objects)

    def resync(self, object_type: str, since_ms: int) -> None:
        changes = self.objects.setdefault(object_type, ObjectChanges())
        changes.resync_since_ms = since_ms if changes.resync_since_ms is None else min(changes.resync_since_ms, since_ms)

    def to_json(self) -> str:
        """The plan as run config text (replay ids in hex)."""
        return json.dumps({
            "after": None if self.after is None else self.after.hex(), "until": None if self.until is None else self.until.hex(),
            "objects": {name: {"ids": changes.ids, "via_parent": changes.via_parent,
                               "resync_since_ms": changes.resync_since_ms} for name, changes in self.objects.items()},
            "commits_ms": self.commits_ms, "events": self.events, "own": self.own, "ignored": self.ignored})

    @classmethod
    def from_json(cls, text: str) -> MicroSyncPlan:
        data = json.loads(text)
        return cls(after=None if data["after"] is None else bytes.fromhex(data["after"]),
                   until=None if data["until"] is None else bytes.fromhex(data["until"]),
                   objects={name: ObjectChanges(list(o["ids"]), {k: list(v) for k, v in o["via_parent"].items()},
                                                o["resync_since_ms"]) for name, o in data["objects"].items()},
                   commits_ms=list(data["commits_ms"]), events=data["events"], own=data["own"],
                   ignored=data["ignored"])


def plan_micro_sync(events: Sequence[ChangeHeader], *, after: bytes | None, until: bytes | None,
                    objects: Iterable[str], parents: Mapping[str, Sequence[str]]) -> MicroSyncPlan:
    """Group events (in replay order) into a plan for the synced `objects`.

    `parents` names, per synced object, the relationships its mappings and rules read through (`Lead` and
    `Contact` for a CampaignMember, `Account` for `Account.Name`): a change of such a parent re-reads the
    object's records under it (a parent's delete does not: its children's own events say what happened to them).
    Gap events with Ids re-read those records; an overflow (no Ids) or an Id with a wildcard (`001*`) re-syncs the object by window
    from the event's commit time."""
    synced = tuple(objects)
    plan = MicroSyncPlan(after=after, until=until)
    for event in events:
        plan.events += 1
        if is_own_change(event.change_origin):
            plan.own += 1
            continue
        worked = False
        if event.entity in synced:
            worked = True
            wildcard = any(record_id.endswith("*") for record_id in event.record_ids)
            if event.change_type == OVERFLOW or wildcard or not event.record_ids:
                plan.resync(event.entity, event.commit_timestamp)
            else:
                plan.objects.setdefault(event.entity, ObjectChanges()).ids.extend(event.record_ids)
        for object_type in synced:
            if event.entity not in parents.get(object_type, ()):
                continue
            worked = True
            if event.change_type == OVERFLOW or not event.record_ids:
                plan.resync(object_type, event.commit_timestamp)
            elif event.change_type not in DELETES:
                changes = plan.objects.setdefault(object_type, ObjectChanges())
                changes.via_parent.setdefault(event.entity, []).extend(event.record_ids)
        if worked:
            plan.commits_ms.append(event.commit_timestamp)
        else:
            plan.ignored += 1
    for changes in plan.objects.values():  # each record once, in the order of its first change
        changes.ids = list(dict.fromkeys(changes.ids))
        changes.via_parent = {parent: list(dict.fromkeys(ids)) for parent, ids in changes.via_parent.items()}
    return plan


def relationship_id_field(relationship: str) -> str:
    """The Id field behind a parent relationship: `Lead` -> `LeadId`, `Owner` -> `OwnerId`, `Foo__r` -> `Foo__c`."""
    return relationship[:-3] + "__c" if relationship.endswith("__r") else relationship + "Id"


def batch_ready(waiting: int, quiet_seconds: float, *, debounce_seconds: float, max_batch: int) -> bool:
    """Whether waiting events make a micro-sync now: max_batch of them, or any once none arrived for the debounce
    window."""
    return waiting >= max_batch or (waiting > 0 and quiet_seconds >= debounce_seconds)


@dataclass(frozen=True)
class LagSummary:
    """End-to-end lag of applied events (event commit → stored), in seconds."""

    events: int
    median_seconds: float
    p99_seconds: float
    max_seconds: float

    def as_metadata(self) -> dict[str, float | int]:
        return {"lag_events": self.events, "lag_median_seconds": round(self.median_seconds, 3),
                "lag_p99_seconds": round(self.p99_seconds, 3), "lag_max_seconds": round(self.max_seconds, 3)}


def lag_summary(commits_ms: Sequence[int], stored_ms: int) -> LagSummary | None:
    """Lags of events committed at `commits_ms` and stored at `stored_ms` (None without events)."""
    if not commits_ms:
        return None
    lags = sorted(max(0, stored_ms - commit) / 1000 for commit in commits_ms)
    p99 = lags[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
    return LagSummary(len(lags), statistics.median(lags), p99, lags[-1])
