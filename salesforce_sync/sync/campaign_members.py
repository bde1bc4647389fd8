"""What campaign membership sends, decided without I/O: the member Status a row's engagement maps to, and per row
whether its person joins the campaign, has their Status moved, or why not."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from salesforce_sync.config.models import WriteBackCampaignMembers
from salesforce_sync.sync.write_back import RowPlan, sendable

#: Outcome code of a Status the campaign does not define, found by us before sending (with
#: create_missing_statuses off Salesforce would store a status the campaign cannot show or report on).
PRECHECK_UNKNOWN_MEMBER_STATUS = "PRECHECK_INVALID_CAMPAIGN_MEMBER_STATUS"


@dataclass(frozen=True)
class CampaignPerson:
    """A row's person in Salesforce: the Contact (or, without one, the unconverted Lead) a new membership names,
    and every Id an existing membership of theirs may carry (a converted Lead's membership keeps its LeadId)."""

    contact_id: str | None
    lead_id: str | None
    ids: tuple[str, ...]
    matched_by: str

    @property
    def member_values(self) -> dict[str, str]:
        return {"ContactId": self.contact_id} if self.contact_id else {"LeadId": self.lead_id or ""}


def member_status(settings: WriteBackCampaignMembers, row: Mapping[str, Any]) -> str | None:
    """The Status a row asks for: its engagement through `status_map` (unmapped values as they are); None
    (no status column, or an empty value) leaves a member's Status alone and gives a new one the default."""
    if settings.status_column is None:
        return None
    value = sendable(row.get(settings.status_column))
    if value is None or value == "":
        return None
    return settings.status_map.get(str(value), str(value))


def plan_member(settings: WriteBackCampaignMembers, key: str, row: Mapping[str, Any], campaign_id: str,
                person: CampaignPerson | None, member: Mapping[str, Any] | None,
                statuses: Collection[str]) -> RowPlan:
    """Join, move the Status of, or leave the person's membership; a Status the campaign lacks is refused here
    unless the push may create it."""
    if person is None:
        return RowPlan(key, "skip", message="no Contact or Lead has the row's key or email")
    status = member_status(settings, row)
    if status is not None and status not in statuses and not settings.create_missing_statuses:
        return RowPlan(key, "reject", member["Id"] if member else None, {"Status": status}, person.matched_by,
                       PRECHECK_UNKNOWN_MEMBER_STATUS,
                       f"found before sending: Status: {status!r} is not a member status of campaign {campaign_id} "
                       f"({', '.join(sorted(statuses))}); add it there, map the value, or set create_missing_statuses",
                       ("Status",))
    if member is not None:
        if status is None or member.get("Status") == status:
            return RowPlan(key, "unchanged", member["Id"], matched_by=person.matched_by)
        return RowPlan(key, "update", member["Id"], {"Id": member["Id"], "Status": status}, person.matched_by)
    values = {"CampaignId": campaign_id, **person.member_values, **({"Status": status} if status else {})}
    return RowPlan(key, "create", values=values, matched_by=person.matched_by)
