"""The audience store: synced Salesforce people, the sync log, the org registry and integration state.

All SQL for the store lives in this package; everything else uses AudienceStore.
"""

from salesforce_sync.store.audience_store import USER_COLUMNS, AudienceStore
from salesforce_sync.store.chunks import CHUNK_COLUMNS, external_ids
from salesforce_sync.store.errors import OrgAlreadyRegisteredError, StoreInputError
from salesforce_sync.store.models import (
    ChangeCaptureState,
    IntegrationState,
    IntegrationStatus,
    ObjectSettings,
    OrgRegistration,
    SyncEvent,
    SyncLogEntry,
    UpsertCounts,
    WindowTally,
)
from salesforce_sync.store.org_ids import canonical_org_id
from salesforce_sync.store.urls import normalize_store_url

__all__ = [
    "CHUNK_COLUMNS",
    "USER_COLUMNS",
    "AudienceStore",
    "ChangeCaptureState",
    "IntegrationState",
    "IntegrationStatus",
    "ObjectSettings",
    "OrgAlreadyRegisteredError",
    "OrgRegistration",
    "StoreInputError",
    "SyncEvent",
    "SyncLogEntry",
    "UpsertCounts",
    "WindowTally",
    "canonical_org_id",
    "external_ids",
    "normalize_store_url",
]
