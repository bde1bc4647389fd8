"""Raw chunks (Bulk-CSV text) -> store chunks: typing, nulls, warnings, CampaignMember opt-out, speed."""

from __future__ import annotations

import io
import json
import time

import pandas as pd
import pytest

from salesforce_sync.config import FieldMapping, default_mappings, effective_mappings
from salesforce_sync.store.chunks import prepare_chunk, store_ready_chunk
from salesforce_sync.sync import STORE_CHUNK_COLUMNS, MappingError, map_chunk, select_fields

CUSTOM = (
    FieldMapping(field="Company", property="company", type="string"),
    FieldMapping(field="Lead_Score__c", property="lead_score", type="number"),
    FieldMapping(field="Interests__c", property="interests", type="array"),
    FieldMapping(field="Newsletter_Signup__c", property="newsletter", type="date"),
    FieldMapping(field="ConvertedDate", property="converted_at", type="date"),
)
LEAD_MAPPINGS = effective_mappings("Lead", CUSTOM)

# A Bulk API 2.0 result chunk as the reference sheet describes it: every value quoted, "" for null.
BULK_CSV = '''"Id","IsDeleted","LastModifiedDate","Email","FirstName","LastName","Phone","HasOptedOutOfEmail","Company","Lead_Score__c","Interests__c","Newsletter_Signup__c","ConvertedDate","IsConverted","ConvertedContactId"
"00Q5g00000F1aBcEAJ","false","2024-01-02T03:04:05.000Z","ada@example.com","Ada","Lovelace","+44 20 1234","false","Analytical Engines","950000000.0","CRM;Email","2024-01-02","2024-03-04T05:06:07.000Z","true","0035g00000C0nTaAAC"
"00Q5g00000F1aBdEAJ","true","2024-01-03T09:00:00.000+0000","","","Hopper","","true","","","","","","",""
"00Q5g00000F1aBeEAJ","false","2024-01-04T10:00:00.000Z","x@y.io","X","Y","","false","Acme","abc","Analytics","2024-13-40","yesterday","maybe",""
'''


def bulk_chunk() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(BULK_CSV), dtype=str, keep_default_na=False)


def test_bulk_csv_chunk_is_typed_and_shaped_for_the_store() -> None:
    frame, warnings = map_chunk(bulk_chunk(), integration_id="acme", object_type="Lead", mappings=LEAD_MAPPINGS)
    assert tuple(frame.columns) == STORE_CHUNK_COLUMNS
    first, second = frame.iloc[0], frame.iloc[1]
    assert first.external_id == "sf_acme_Lead_00Q5g00000F1aBcEAJ" and first.salesforce_id == "00Q5g00000F1aBcEAJ"
    assert first.object_type == "Lead"
    assert (first.email, first.first_name, first.last_name, first.phone) == (
        "ada@example.com", "Ada", "Lovelace", "+44 20 1234")
    assert first.unsubscribed is False and first.deleted == False  # noqa: E712 (numpy bool)
    assert json.loads(first.properties) == {
        "company": "Analytical Engines", "lead_score": 950000000.0, "interests": ["CRM", "Email"],
        "newsletter": "2024-01-02", "converted_at": "2024-03-04T05:06:07.000Z", "is_converted": True,
        "converted_contact_id": "0035g00000C0nTaAAC",
    }
    assert first.sf_modified_at == pd.Timestamp("2024-01-02T03:04:05Z")
    assert str(frame["sf_modified_at"].dtype) == "datetime64[us, UTC]"
    # empty CSV cells are nulls everywhere; the +0000 REST form parses like the Z form
    assert (second.email, second.first_name, second.phone, second.unsubscribed, second.deleted) == (
        None, None, None, True, True)
    assert json.loads(second.properties) == dict.fromkeys(
        ("company", "lead_score", "interests", "newsletter", "converted_at", "is_converted", "converted_contact_id"))
    assert second.sf_modified_at == pd.Timestamp("2024-01-03T09:00:00Z")
    assert frame["deleted"].dtype == bool


def test_values_that_do_not_fit_become_null_with_a_warning_naming_record_field_and_value() -> None:
    frame, warnings = map_chunk(bulk_chunk(), integration_id="acme", object_type="Lead", mappings=LEAD_MAPPINGS)
    assert json.loads(frame.iloc[2].properties) == {
        "company": "Acme", "lead_score": None, "interests": ["Analytics"], "newsletter": None,
        "converted_at": None, "is_converted": None, "converted_contact_id": None,
    }
    assert [(w.salesforce_id, w.field, w.property, w.value, w.expected) for w in warnings] == [
        ("00Q5g00000F1aBeEAJ", "IsConverted", "is_converted", "maybe", "boolean"),
        ("00Q5g00000F1aBeEAJ", "Lead_Score__c", "lead_score", "abc", "number"),
        ("00Q5g00000F1aBeEAJ", "Newsletter_Signup__c", "newsletter", "2024-13-40", "date"),
        ("00Q5g00000F1aBeEAJ", "ConvertedDate", "converted_at", "yesterday", "date"),
    ]
    assert str(warnings[1]) == ("record 00Q5g00000F1aBeEAJ: Lead_Score__c value 'abc' is not a valid number for "
                                "property 'lead_score'; stored as null")


def test_properties_are_the_json_text_json_dumps_writes_and_the_store_takes_them_as_built() -> None:
    """Each property column is turned into JSON values a column at a time; the documents must be exactly what
    json.dumps writes for the row's dict (compact, not ASCII-escaped), and the chunk, checked where it was built,
    must be stored exactly as the store's full validation would store it."""
    company = ['Zoë\'s "Café" 北京 🚀', "back\\slash\ttab\nline\r", "100% %s", "", "\u2028 \x01 control", "semi;colon"]
    score = ["1e16", "-0.0", "0.1", "", "123456789012345678", "abc"]
    interests = ["a;b", ";;", 'quote";back\\', "", "北京;🚀", "single"]
    signup = ["2024-01-02", "2024-01-02T03:04:05.000+0200", "", "", "nonsense", "2024-02-29"]
    count = len(company)
    raw = pd.DataFrame({"Id": [f"00Q{n}" for n in range(count)], "IsDeleted": "false",
                        "LastModifiedDate": "2024-01-01T00:00:00Z", "Company": company, "Score": score,
                        "Interests__c": interests, "Signup": signup, "Active": ["true", "FALSE", "", "x", "True", "false"]})
    mappings = [FieldMapping(field="Company", property="company", type="string"),
                FieldMapping(field="Score", property="score", type="number"),
                FieldMapping(field="Interests__c", property="interests", type="array"),
                FieldMapping(field="Signup", property="signup", type="date"),
                FieldMapping(field="Active", property="active", type="boolean")]

    frame, _ = map_chunk(raw, integration_id="acme", object_type="Lead", mappings=mappings)

    expected = [
        {"company": company[n] or None,
         "score": {0: 1e16, 1: -0.0, 2: 0.1, 4: 123456789012345678.0}.get(n),
         "interests": interests[n].split(";") if interests[n] else None,
         "signup": {0: "2024-01-02", 1: "2024-01-02T01:04:05.000Z", 5: "2024-02-29"}.get(n),
         "active": {0: True, 1: False, 4: True, 5: False}.get(n)}
        for n in range(count)
    ]
    assert frame["properties"].tolist() == [json.dumps(document, ensure_ascii=False, separators=(",", ":"))
                                            for document in expected]
    as_built = store_ready_chunk("acme", frame).rows
    validated = prepare_chunk("acme", frame.assign(properties=expected)).rows
    pd.testing.assert_frame_equal(as_built, validated)


def test_number_property_from_text_drops_non_finite_values() -> None:
    raw = pd.DataFrame({"Id": ["a", "b", "c", "d"], "IsDeleted": "false", "LastModifiedDate": "2024-01-01T00:00:00Z",
                        "Score": ["12", "-1.5E3", "inf", "NaN"]})
    frame, warnings = map_chunk(raw, integration_id="acme", object_type="Lead",
                                mappings=[FieldMapping(field="Score", property="score", type="number")])
    assert frame["properties"].tolist() == ['{"score":12.0}', '{"score":-1500.0}', '{"score":null}', '{"score":null}']
    assert [w.value for w in warnings] == ["inf", "NaN"]


def campaign_members() -> pd.DataFrame:
    """REST-shaped input: None for null, columns named by SELECT path."""
    fields = select_fields("CampaignMember", default_mappings("CampaignMember"))
    rows = [
        ("00v000000000001AAA", "true", None),     # a Lead member that opted out
        ("00v000000000002AAA", None, "false"),    # a Contact member
        ("00v000000000003AAA", None, None),       # neither readable
        ("00v000000000004AAA", "", "perhaps"),    # bad value from the Contact side
    ]
    data = {field: [None] * len(rows) for field in fields}
    data.update({"Id": [r[0] for r in rows], "IsDeleted": ["false"] * 4, "LastModifiedDate": ["2024-05-06T07:08:09.000Z"] * 4,
                 "Lead.HasOptedOutOfEmail": [r[1] for r in rows], "Contact.HasOptedOutOfEmail": [r[2] for r in rows]})
    return pd.DataFrame(data)


def test_campaign_member_opt_out_is_read_through_lead_or_contact() -> None:
    frame, warnings = map_chunk(campaign_members(), integration_id="acme", object_type="CampaignMember",
                                mappings=default_mappings("CampaignMember"))
    assert frame["unsubscribed"].tolist() == [True, False, None, None]
    assert json.loads(frame["properties"].tolist()[0]) == {"lead_id": None, "contact_id": None}
    assert frame["external_id"].tolist()[0] == "sf_acme_CampaignMember_00v000000000001AAA"
    assert [(w.salesforce_id, w.field, w.value) for w in warnings] == [
        ("00v000000000004AAA", "Contact.HasOptedOutOfEmail", "perhaps")]


def test_unmapped_opt_out_is_none() -> None:
    raw = pd.DataFrame({"Id": ["a"], "IsDeleted": ["false"], "LastModifiedDate": ["2024-01-01T00:00:00Z"], "Email": ["e@x.io"]})
    frame, _ = map_chunk(raw, integration_id="acme", object_type="Contact",
                         mappings=[FieldMapping(field="Email", property="email", type="string")])
    assert frame.iloc[0].unsubscribed is None and frame.iloc[0].first_name is None and frame.iloc[0].properties == "{}"


def test_a_company_row_keeps_every_value_in_properties_and_no_person_columns() -> None:
    raw = pd.DataFrame({"Id": ["001A"], "IsDeleted": ["false"], "LastModifiedDate": ["2024-01-01T00:00:00Z"],
                        "Name": ["Initech"], "Phone": ["+1 555 0100"], "AnnualRevenue": ["2500000.0"]})
    mappings = effective_mappings("Account", (FieldMapping(field="Phone", property="phone", type="string"),
                                              FieldMapping(field="AnnualRevenue", property="revenue", type="number")))
    assert select_fields("Account", mappings) == ("Id", "IsDeleted", "LastModifiedDate", "Name", "Phone",
                                                  "AnnualRevenue")
    frame, _ = map_chunk(raw, integration_id="acme", object_type="Account", mappings=mappings)
    row = frame.iloc[0]
    assert row.external_id == "sf_acme_Account_001A"
    assert [row.email, row.first_name, row.last_name, row.phone, row.unsubscribed] == [None] * 5
    assert json.loads(row.properties) == {"name": "Initech", "phone": "+1 555 0100", "revenue": 2500000.0}


def test_columns_match_case_insensitively() -> None:
    raw = pd.DataFrame({"ID": ["a"], "isdeleted": ["FALSE"], "lastmodifieddate": ["2024-01-01T00:00:00Z"],
                        "EMAIL": ["e@x.io"]})
    frame, _ = map_chunk(raw, integration_id="acme", object_type="Lead",
                         mappings=[FieldMapping(field="Email", property="email", type="string")])
    assert (frame.iloc[0].email, frame.iloc[0].deleted) == ("e@x.io", False)


@pytest.mark.parametrize(("change", "problem"), [
    ({"Email": None}, "integration 'acme', Lead: the raw chunk has no column 'Email'; select it"),
    ({"Id": ["a", ""]}, "integration 'acme', Lead: 1 record(s) have no Id"),
    ({"LastModifiedDate": ["2024-01-01T00:00:00Z", "garbage"]},
     "integration 'acme', Lead: record b: LastModifiedDate 'garbage' is not a datetime"),
])
def test_chunks_that_cannot_be_mapped(change: dict, problem: str) -> None:
    data = {"Id": ["a", "b"], "IsDeleted": ["false", "false"], "LastModifiedDate": ["2024-01-01T00:00:00Z"] * 2,
            "Email": ["e@x.io", None]}
    data.update(change)
    raw = pd.DataFrame({k: v for k, v in data.items() if v is not None})
    with pytest.raises(MappingError) as error:
        map_chunk(raw, integration_id="acme", object_type="Lead",
                  mappings=[FieldMapping(field="Email", property="email", type="string")])
    assert str(error.value).startswith(problem)


def test_empty_chunk_keeps_the_store_shape() -> None:
    fields = select_fields("Lead", LEAD_MAPPINGS)
    raw = pd.DataFrame({field: pd.Series([], dtype=str) for field in fields})
    frame, warnings = map_chunk(raw, integration_id="acme", object_type="Lead", mappings=LEAD_MAPPINGS)
    assert tuple(frame.columns) == STORE_CHUNK_COLUMNS and len(frame) == 0 and warnings == []
    assert str(frame["sf_modified_at"].dtype) == "datetime64[us, UTC]"


def test_mapping_speed() -> None:
    rows = 200_000
    raw = pd.DataFrame({
        "Id": [f"00Q{n:015d}" for n in range(rows)], "IsDeleted": "false",
        "LastModifiedDate": "2024-01-02T03:04:05.000Z", "Email": "ada@example.com", "FirstName": "Ada",
        "LastName": "Lovelace", "Phone": "", "HasOptedOutOfEmail": "false", "Company": "Acme",
        "Lead_Score__c": "42.0", "Interests__c": "CRM;Email", "Newsletter_Signup__c": "2024-01-02",
        "ConvertedDate": "2024-03-04T05:06:07.000Z", "IsConverted": "true", "ConvertedContactId": "",
    }).astype(str)
    started = time.perf_counter()
    frame, warnings = map_chunk(raw, integration_id="acme", object_type="Lead", mappings=LEAD_MAPPINGS)
    elapsed = time.perf_counter() - started
    print(f"\nmap_chunk: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s")
    assert len(frame) == rows and not warnings
    assert json.loads(frame.iloc[-1].properties)["converted_at"] == "2024-03-04T05:06:07.000Z"
