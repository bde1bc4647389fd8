"""The plan of an org: counts, salts, record-role shuffles and per-seed pools; and the audit timeline."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from salesforce_sync.emulator.generate.draws import (
    GAMMA, Draws, Shuffle, between, coprime_stride, maybe, mix64, record_ids,
)
from salesforce_sync.emulator.generate.pools import USERS, Grouped, address_pool, phone_pool

DAY = 86_400
HISTORY_SECONDS = 5 * 365 * DAY
RECYCLE_BIN_SECONDS = 14 * DAY
PAST_DAYS = 100 * 366  # birthdates reach furthest back
FUTURE_DAYS = 400  # due, close and campaign end dates reach ahead

CONVERTED_SHARE = 0.08
DUPLICATE_SHARE = 0.03
T = TypeVar("T")


def check_feasible(counts: dict[str, int], live_people: int) -> None:
    if counts["Contact"] and not counts["Account"]:
        raise ValueError(f"generate_org: {counts['Contact']} Contacts need at least one Account, got Account=0")
    if counts["Opportunity"] and not counts["Account"]:
        raise ValueError(f"generate_org: {counts['Opportunity']} Opportunities need at least one Account, got Account=0")
    members = counts["CampaignMember"]
    capacity = counts["Campaign"] * live_people
    if members > capacity:
        raise ValueError(
            f"generate_org: CampaignMember={members} exceeds the {capacity} distinct (Campaign, person) pairs "
            f"of {counts['Campaign']} Campaigns and {live_people} live Leads and Contacts")


# ---- the plan: counts, salts, shuffles and per-seed pools ----------------------------------------

@dataclass
class Plan:
    """Everything derived once from (seed, counts, now): salts, record-role shuffles and value pools."""

    counts: dict[str, int]
    now: int  # seconds
    base_salt: int
    leads: Shuffle
    contacts: Shuffle
    accounts: Shuffle
    opportunities: Shuffle
    converted: int
    duplicates: int
    conversion_opportunities: int
    member_stride: int
    external_key_multiplier: int
    external_key_offset: int
    import_times: np.ndarray
    mass_update_times: np.ndarray
    phones: np.ndarray
    addresses: Grouped
    user_ids: np.ndarray
    owners: np.ndarray
    editors: np.ndarray
    first_day: int
    day_strings: np.ndarray
    _salts: dict[str, int] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, seed: int, counts: dict[str, int], now_ms: int) -> Plan:
        if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
            raise ValueError(f"generate_org: now_ms must be a non-negative integer of epoch milliseconds, got {now_ms!r}")
        rng = random.Random(seed)
        base_salt = rng.getrandbits(64)
        shuffles = {name: Shuffle.build(rng, counts[name]) for name in ("Lead", "Contact", "Account", "Opportunity")}
        leads, contacts = shuffles["Lead"], shuffles["Contact"]
        live_contacts = contacts.live if counts["Contact"] else 0
        converted = min(round(CONVERTED_SHARE * counts["Lead"]), live_contacts)
        duplicates = min(round(DUPLICATE_SHARE * counts["Lead"]), live_contacts - converted)
        live_people = (leads.live if counts["Lead"] else 0) + live_contacts
        live_opportunities = shuffles["Opportunity"].live if counts["Opportunity"] else 0
        check_feasible(counts, live_people)
        now = now_ms // 1000
        first_day = now // DAY - PAST_DAYS
        user_ids = record_ids("User", np.arange(len(USERS)))
        return cls(
            counts=counts, now=now, base_salt=base_salt, leads=leads, contacts=contacts,
            accounts=shuffles["Account"], opportunities=shuffles["Opportunity"],
            converted=converted, duplicates=duplicates,
            conversion_opportunities=min(converted // 3, live_opportunities // 2),
            member_stride=coprime_stride(rng, live_people),
            external_key_multiplier=rng.getrandbits(40) | 1, external_key_offset=rng.getrandbits(40),
            import_times=np.array(sorted(now - rng.randrange(HISTORY_SECONDS) for _ in range(24)), dtype=np.int64),
            mass_update_times=np.array(sorted(now - rng.randrange(HISTORY_SECONDS // 5) for _ in range(8)),
                                       dtype=np.int64),
            phones=phone_pool(rng, 3000), addresses=address_pool(rng),
            user_ids=user_ids,
            owners=user_ids[[1, 2, 2, 3, 3, 4, 4, 5]],
            editors=user_ids[[0, 0, 0, 1, 2, 2, 3, 3, 4, 4]],
            first_day=first_day,
            day_strings=np.datetime_as_string(
                np.arange(first_day, now // DAY + FUTURE_DAYS, dtype=np.int64).astype("datetime64[D]")).astype(object),
        )

    def dates(self, seconds: np.ndarray) -> np.ndarray:
        """'YYYY-MM-DD' (UTC) of epoch seconds, as an object array of str (looked up, not formatted)."""
        days = seconds // DAY - self.first_day
        if len(days) and (days.min() < 0 or days.max() >= len(self.day_strings)):
            raise ValueError(f"generate_org: a generated date lies outside the {PAST_DAYS} days before and "
                             f"{FUTURE_DAYS} days after now")
        return self.day_strings[days]

    def salt(self, label: str) -> int:
        salt = self._salts.get(label)
        if salt is None:
            salt = self._salts[label] = mix64(self.base_salt ^ (zlib.crc32(label.encode()) * GAMMA))
        return salt

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """A value computed once per plan (e.g. campaign roll-ups), by whichever generator needs it first."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def row_count(self, object_name: str) -> int:
        """How many records of the object the org gets: its count, or for member statuses two per campaign."""
        if object_name == "CampaignMemberStatus":
            return 2 * self.counts["Campaign"]
        return self.counts[object_name]

    @property
    def live_leads(self) -> int:
        return self.leads.live if self.counts["Lead"] else 0

    @property
    def live_contacts(self) -> int:
        return self.contacts.live if self.counts["Contact"] else 0


# ---- timestamps --------------------------------------------------------------------------------

@dataclass
class Stamps:
    """CreatedDate <= LastModifiedDate <= SystemModstamp <= now, in epoch seconds, and IsDeleted."""

    created: np.ndarray
    modified: np.ndarray
    modstamp: np.ndarray
    deleted: np.ndarray

    def start_at(self, mask: np.ndarray, created: np.ndarray) -> None:
        """Move the creation of the masked records (e.g. to a conversion), keeping the order of stamps."""
        self.created[mask] = created
        np.maximum(self.modified, self.created, out=self.modified)
        np.maximum(self.modstamp, self.modified, out=self.modstamp)


def timeline(plan: Plan, draws: Draws, deleted: np.ndarray, earliest: np.ndarray | None = None) -> Stamps:
    """Audit stamps over ~5 years, more recent than old, with bulk imports, mass updates and a recent tail."""
    now = plan.now
    low = np.full(len(draws.idx), now - HISTORY_SECONDS, dtype=np.int64) if earliest is None else earliest
    created = now - ((now - low) * draws.unit("Created") ** 1.3).astype(np.int64)
    imported = plan.import_times[draws.below("ImportBatch", len(plan.import_times))]
    created = np.where(draws.chance("Imported", 0.04) & (imported >= low), imported, created)

    kind, when = draws.unit("ModifiedKind"), draws.unit("Modified")
    edited = created + ((now - created) * when).astype(np.int64)
    last_days = np.maximum(created, now - (3 * DAY * when).astype(np.int64))
    last_hours = np.maximum(created, now - (2 * 3600 * when).astype(np.int64))
    mass = np.maximum(created, plan.mass_update_times[draws.below("MassUpdate", len(plan.mass_update_times))])
    modified = np.select([kind < 0.35, kind < 0.90, kind < 0.96, kind < 0.98],
                         [created, edited, last_days, last_hours], mass)

    touched = draws.chance("SystemTouched", 0.1)
    later = np.minimum(now - modified, (DAY * draws.unit("SystemDelay")).astype(np.int64))
    modstamp = modified + np.where(touched, later, 0)

    deletion = np.maximum(created, now - (RECYCLE_BIN_SECONDS * draws.unit("DeletedAt")).astype(np.int64))
    modified = np.where(deleted, deletion, modified)
    modstamp = np.where(deleted, deletion, modstamp)
    return Stamps(created, modified, modstamp, deleted)


def audit_columns(plan: Plan, draws: Draws, stamps: Stamps, *, views: bool = True) -> dict[str, Any]:
    """Audit and recently-viewed columns shared by the business objects."""
    columns: dict[str, Any] = {
        "IsDeleted": stamps.deleted,
        "CreatedDate": stamps.created * 1000, "CreatedById": draws.pick("CreatedBy", plan.editors),
        "LastModifiedDate": stamps.modified * 1000, "LastModifiedById": draws.pick("LastModifiedBy", plan.editors),
        "SystemModstamp": stamps.modstamp * 1000,
    }
    if views:
        viewed = between(draws, "ViewedAt", stamps.created, plan.now) * 1000
        was_viewed = draws.chance("Viewed", 0.08)
        columns.update({
            "LastActivityDate": maybe(draws.chance("Activity", 0.25),
                                       plan.dates(between(draws, "ActivityAt", stamps.created, plan.now))),
            "LastViewedDate": maybe(was_viewed, viewed), "LastReferencedDate": maybe(was_viewed, viewed),
        })
    return columns

