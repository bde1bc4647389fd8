"""Errors the audience store raises on bad input or conflicting registrations."""

from __future__ import annotations


class StoreInputError(ValueError):
    """Input the store refuses; the message names the integration, object, field or value at fault."""


class OrgAlreadyRegisteredError(Exception):
    """A Salesforce org may feed only one project: this org already belongs to another one."""

    def __init__(self, org_id: str, requested_project: str, owner_project: str, owner_integration_id: str):
        self.org_id = org_id
        self.requested_project = requested_project
        self.owner_project = owner_project
        self.owner_integration_id = owner_integration_id
        super().__init__(
            f"Salesforce org {org_id!r} is already connected to project {owner_project!r} "
            f"through integration {owner_integration_id!r}; it cannot also be connected to project "
            f"{requested_project!r}. Disconnect it there first."
        )
