"""Formula freshness, pure: which mappings a refresh re-reads (from the emulated org's real describes), its SOQL,
and which stored rows its values change, with the properties rebuilt exactly as a window maps them."""

from __future__ import annotations

import json

from typing import Any

import pandas as pd

from salesforce_sync.config.models import FieldMapping, effective_mappings
from salesforce_sync.store.chunks import prepare_chunk, store_ready_chunk
from salesforce_sync.sync.formulas import changed_rows, refresh_query, refreshed_mappings
from salesforce_sync.sync.mapping import map_chunk
from salesforce_sync_tests.sync.test_sync_describe import describes_for


def mapping(field: str | tuple[str, ...], prop: str, kind: str = "string") -> FieldMapping:
    return FieldMapping(fields=(field,) if isinstance(field, str) else field, property=prop, type=kind)


CONTACT = effective_mappings("Contact", (mapping("Account_Tier__c", "tier"), mapping("Title", "title"),
                                         mapping("Account.Owner.Name", "owner"),
                                         mapping("Lifetime_Value__c", "value", "number")))
BY_PROPERTY = {m.property: m for m in CONTACT}


def test_a_refresh_rereads_formula_fields_and_relationship_paths_only() -> None:
    paths = [path for m in CONTACT for path in m.fields]
    refreshed = refreshed_mappings("Contact", CONTACT, describes_for("Contact", paths))
    assert [m.property for m in refreshed] == ["tier", "owner"]
    member = effective_mappings("CampaignMember", (mapping("Campaign.Name", "campaign"), mapping("Status", "status")))
    paths = [path for m in member for path in m.fields]
    # The opt-out a CampaignMember reads through its Lead or Contact is a store column read through a path.
    assert [m.property for m in refreshed_mappings("CampaignMember", member, describes_for("CampaignMember", paths))] \
        == ["unsubscribed", "campaign"]


def test_the_refresh_query_selects_id_the_stamps_and_the_refreshed_paths_under_the_rules() -> None:
    fields, soql, count = refresh_query("Contact", [BY_PROPERTY["tier"], BY_PROPERTY["owner"]], "Email != null")
    assert fields == ("Id", "IsDeleted", "LastModifiedDate", "Account_Tier__c", "Account.Owner.Name")
    assert soql == ("SELECT Id, IsDeleted, LastModifiedDate, Account_Tier__c, Account.Owner.Name FROM Contact "
                    "WHERE (Email != null)")
    assert count == "SELECT COUNT() FROM Contact WHERE (Email != null)"


def raw(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype(object)


def window_chunk(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """What a window stores for these raw records (every mapping)."""
    return map_chunk(raw(rows), integration_id="crm", object_type="Contact", mappings=CONTACT).frame


def stored_form(frame: pd.DataFrame) -> pd.DataFrame:
    """A chunk as the store hands it back (properties through JSON, a whole number as an int)."""
    stored = frame.copy()
    stored["properties"] = [{k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in p.items()}
                            for p in stored["properties"].map(json.loads)]
    stored["unsubscribed"] = stored["unsubscribed"].astype("boolean")
    return stored


RECORD = {"IsDeleted": "false", "LastModifiedDate": "2024-03-01T10:00:00.000Z", "Email": "a@example.com",
          "FirstName": "Ada", "LastName": "Byron", "Phone": None, "HasOptedOutOfEmail": "false",
          "AccountId": "0015000000000AAA", "Account_Tier__c": "Gold", "Title": "CTO", "Account.Owner.Name": "Zoë", "Lifetime_Value__c": "1e20"}


def test_only_rows_whose_refreshed_values_differ_change_and_their_hash_is_the_windows() -> None:
    records = [{**RECORD, "Id": f"003{i}"} for i in range(3)]
    stored = stored_form(window_chunk(records))
    refreshed = [BY_PROPERTY["tier"], BY_PROPERTY["owner"]]
    later = [dict(record) for record in records]
    later[1]["Account_Tier__c"] = "Silver"
    later[2]["Account.Owner.Name"] = None
    later[0]["LastModifiedDate"] = "2025-01-01T00:00:00.000Z"  # a newer version does not matter: stored stamps stay
    fresh = map_chunk(raw([{k: r[k] for k in ("Id", "IsDeleted", "LastModifiedDate", "Account_Tier__c",
                                              "Account.Owner.Name")} for r in later]),
                      integration_id="crm", object_type="Contact", mappings=refreshed).frame

    changed = changed_rows(fresh, stored, CONTACT, refreshed)

    assert list(changed["salesforce_id"]) == ["0031", "0032"]
    assert list(changed["sf_modified_at"]) == list(stored["sf_modified_at"][1:])
    expected = window_chunk(later[1:3])
    expected["sf_modified_at"] = stored["sf_modified_at"][1:].to_numpy()
    # Same content, same property order as a window writes: the same content hash.
    assert list(prepare_chunk("crm", changed).rows["content_hash"]) == \
        list(store_ready_chunk("crm", expected).rows["content_hash"])
    assert changed.at[0, "properties"] == {"account_id": "0015000000000AAA", "tier": "Silver", "title": "CTO",
                                           "owner": "Zoë", "value": 1e20}


def test_rows_not_stored_live_are_left_out_and_unchanged_rows_are_not_rewritten() -> None:
    records = [{**RECORD, "Id": f"003{i}"} for i in range(2)]
    stored = stored_form(window_chunk(records[:1]))
    refreshed = [BY_PROPERTY["tier"]]
    fresh = map_chunk(raw([{k: r[k] for k in ("Id", "IsDeleted", "LastModifiedDate", "Account_Tier__c")}
                           for r in records]), integration_id="crm", object_type="Contact", mappings=refreshed).frame
    assert changed_rows(fresh, stored, CONTACT, refreshed).empty
    assert changed_rows(fresh, stored.iloc[:0], CONTACT, refreshed).empty
