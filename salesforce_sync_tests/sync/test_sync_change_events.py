"""Grouping change events into a micro-sync plan (pure): our own write-back's changes left out, each changed
record read once, parents' changes reaching the records read through them, overflows and wildcard Ids re-syncing,
and batches closing on their debounce window or size cap."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from salesforce_sync.sync.change_events import MicroSyncPlan, batch_ready, is_own_change, lag_summary, plan_micro_sync


@dataclass
class Event:
    entity: str
    change_type: str
    record_ids: list[str]
    commit_timestamp: int = 1_000
    change_origin: str = "com/salesforce/api/rest/62.0;client=marketing-app"
    replay_id: bytes = field(default=b"\x01")


def plan(*events: Event) -> MicroSyncPlan:
    return plan_micro_sync(events, after=b"\x00", until=b"\x09", objects=("Lead", "CampaignMember"),
                           parents={"CampaignMember": ("Lead", "Contact", "Campaign")})


@pytest.mark.parametrize(("origin", "own"), [
    ("com/salesforce/api/rest/62.0;client=salesforce-sync", True),
    ("com/salesforce/api/bulkapi/62.0; client = salesforce-sync", True),
    ("com/salesforce/api/rest/62.0;client=salesforce-sync-staging", False),
    ("com/salesforce/api/soap/58.0;client=SfdcInternalAPI/", False),
    ("", False),
])
def test_own_changes_are_recognised_by_their_client(origin: str, own: bool) -> None:
    assert is_own_change(origin) is own


def test_each_changed_record_is_read_once_and_own_changes_are_left_out() -> None:
    planned = plan(Event("Lead", "UPDATE", ["00Q1"], 1_000), Event("Lead", "DELETE", ["00Q1"], 2_000),
                   Event("Lead", "DELETE", ["00Q2"], 2_500), Event("Lead", "UNDELETE", ["00Q2"], 3_000),
                   Event("Lead", "UPDATE", ["00Q3"], 4_000,
                         change_origin="com/salesforce/api/rest/62.0;client=salesforce-sync"),
                   Event("Opportunity", "UPDATE", ["0061"], 5_000))
    assert planned.objects["Lead"].ids == ["00Q1", "00Q2"]
    assert (planned.events, planned.own, planned.ignored) == (6, 1, 1)
    assert planned.commits_ms == [1_000, 2_000, 2_500, 3_000]  # a Lead is also a CampaignMember's parent
    assert planned.objects["CampaignMember"].via_parent == {"Lead": ["00Q1", "00Q2"]}


def test_overflow_and_wildcards_resync_from_the_earliest_commit() -> None:
    planned = plan(Event("Lead", "GAP_OVERFLOW", [], 9_000), Event("Lead", "GAP_UPDATE", ["00Q*"], 7_000),
                   Event("Contact", "GAP_OVERFLOW", [], 8_000), Event("Lead", "GAP_UPDATE", ["00Q5"], 9_500))
    assert planned.objects["Lead"].resync_since_ms == 7_000
    assert planned.objects["Lead"].ids == ["00Q5"]  # a gap with Ids re-reads them
    assert planned.objects["CampaignMember"].resync_since_ms == 8_000  # its Contacts' changes are unknown


def test_a_plan_survives_run_config() -> None:
    planned = plan(Event("Lead", "UPDATE", ["00Q1"]), Event("Lead", "GAP_OVERFLOW", []))
    assert MicroSyncPlan.from_json(planned.to_json()) == planned
    empty = plan_micro_sync([], after=None, until=None, objects=("Lead",), parents={})
    assert MicroSyncPlan.from_json(empty.to_json()) == empty and not empty.needs_work


def test_batches_close_on_quiet_or_size_and_lag_is_summarised() -> None:
    assert not batch_ready(0, 10, debounce_seconds=1, max_batch=5)
    assert not batch_ready(3, 0.5, debounce_seconds=1, max_batch=5)
    assert batch_ready(3, 1.0, debounce_seconds=1, max_batch=5)
    assert batch_ready(5, 0.0, debounce_seconds=1, max_batch=5)
    summary = lag_summary([1_000, 2_000, 3_000], 4_000)
    assert (summary.events, summary.median_seconds, summary.max_seconds) == (3, 2.0, 3.0)
    assert lag_summary([], 4_000) is None
