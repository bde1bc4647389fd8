"""RecordWriter against the emulated org over TLS, through sObject Collections and through Bulk 2.0 ingest (each
forced by the bulk threshold): results in input order with the right created flags and ids, null versus absent
keys, each record's own Salesforce error beside good records that still commit, retried row locks, requests
refused whole split down to the rows at fault, and the API calls counted."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from simple_salesforce import Salesforce

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.writes import BULK_JOB_FAILED, OUTCOME_UNKNOWN, RecordError, RecordResult, RecordWriter
from salesforce_sync_tests.emulator.test_emulator_convert_lead import basic, convert

_serial = itertools.count(1)


def unique(label: str) -> str:
    return f"{label}{next(_serial)}"


def lead(label: str, **values: Any) -> dict[str, Any]:
    """A valid new Lead, its email unique so the standard duplicate rule stays quiet."""
    name = unique(label)
    return {"LastName": name, "Company": "Writes Co", "Email": f"{name.lower()}@writes.test", **values}


def stored(sf: Salesforce, ids: list[str], fields: str) -> dict[str, dict[str, Any]]:
    quoted = ",".join(f"'{i}'" for i in ids)
    return {r["Id"]: r for r in sf.query_all(f"SELECT Id, {fields} FROM Lead WHERE Id IN ({quoted})")["records"]}


def ok(results: list[RecordResult]) -> list[str]:
    assert [r.index for r in results] == list(range(len(results)))
    assert [r.error for r in results] == [None] * len(results)
    return [r.salesforce_id for r in results]


def test_insert_update_upsert_answer_in_input_order(writer: RecordWriter, sf: Salesforce) -> None:
    new = [lead("Order", Title=f"T{i}", Phone=f"555-01{i:02d}") for i in range(5)]
    results = writer.write("Lead", "insert", new)
    ids = ok(results)
    assert [r.created for r in results] == [True] * 5 and [r.attempts for r in results] == [1] * 5
    rows = stored(sf, ids, "LastName, Title, Phone, City")
    assert [rows[i]["LastName"] for i in ids] == [r["LastName"] for r in new]

    changes = [{"Id": ids[3], "Title": "Changed 3"}, {"Id": ids[0], "Title": None},
               {"Id": ids[4], "City": "Lyon", "Phone": None}]
    results = writer.write("Lead", "update", changes)
    assert ok(results) == [ids[3], ids[0], ids[4]] and [r.created for r in results] == [False] * 3
    rows = stored(sf, ids, "Title, Phone, City")
    assert (rows[ids[3]]["Title"], rows[ids[3]]["Phone"]) == ("Changed 3", "555-0103")  # absent key: unchanged
    assert (rows[ids[0]]["Title"], rows[ids[0]]["Phone"]) == (None, "555-0100")  # explicit None: cleared
    assert (rows[ids[4]]["Title"], rows[ids[4]]["Phone"], rows[ids[4]]["City"]) == ("T4", None, "Lyon")

    keys = [unique("EXT-") for _ in range(4)]
    writer.write("Lead", "update", [{"Id": ids[1], "External_Key__c": keys[1]}, {"Id": ids[2], "External_Key__c": keys[3]}])
    upserts = [lead("Up", External_Key__c=keys[0]), {"External_Key__c": keys[1], "Title": "Matched"},
               lead("Up", External_Key__c=keys[2]), {"External_Key__c": keys[3], "Title": "Matched too"}]
    results = writer.write("Lead", "upsert", upserts, external_id_field="External_Key__c")
    upserted = ok(results)
    assert [r.created for r in results] == [True, False, True, False]
    assert (upserted[1], upserted[3]) == (ids[1], ids[2])
    rows = stored(sf, upserted, "Title, External_Key__c")
    assert [rows[i]["External_Key__c"] for i in upserted] == keys
    assert (rows[ids[1]]["Title"], rows[ids[2]]["Title"]) == ("Matched", "Matched too")


def test_each_record_gets_its_own_error_and_good_records_commit(org: EmulatedOrg, sf: Salesforce,
                                                                 writer: RecordWriter, path: str) -> None:
    original = writer.write("Lead", "insert", [lead("Original")])[0].salesforce_id
    original_email = sf.Lead.get(original)["Email"]
    users = sf.query("SELECT Id FROM User WHERE IsActive = true AND Alias != 'integ' ORDER BY Id")["records"]
    inactive = users[-1]["Id"]
    org.control.deactivate_user(inactive)
    try:
        records = [lead("Good"), {"Company": "No Name Co"}, lead("Twin", Email=original_email.upper()),
                   lead("Bad", Email="not an email"), lead("Pick", CleanStatus="Sparkling"),
                   lead("Long", Company="x" * 256), lead("Orphan", OwnerId=inactive), lead("Good")]
        results = writer.write("Lead", "insert", records)
    finally:
        org.control.activate_user(inactive)
    errors = [r.error for r in results]
    assert errors[0] is None and errors[-1] is None
    assert [(e.status_code, e.fields) for e in errors[1:-1]] == [
        ("REQUIRED_FIELD_MISSING", ("LastName",)), ("DUPLICATES_DETECTED", ()),
        ("INVALID_EMAIL_ADDRESS", ("Email",)), ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ("CleanStatus",)),
        ("STRING_TOO_LONG", ("Company",)), ("INACTIVE_OWNER_OR_USER", ())]
    assert errors[3].message == "Email: invalid email address: not an email"
    assert errors[6].message == f"operation performed with inactive user [{inactive}] as owner of lead"
    if path == "collections":  # Bulk's sf__Error cell has no room for the duplicate rule's matches
        assert errors[2].duplicate_ids == (original,)
    assert not any(e.retryable for e in errors[1:-1])
    assert all(r.attempts == 1 and r.salesforce_id is None for r in results[1:-1])
    good = [results[0].salesforce_id, results[-1].salesforce_id]
    assert set(stored(sf, good, "LastName")) == set(good)
    assert sf.query("SELECT COUNT() FROM Lead WHERE LastName LIKE 'Twin%' OR LastName LIKE 'Bad%' "
                    "OR LastName LIKE 'Pick%' OR LastName LIKE 'Long%' OR LastName LIKE 'Orphan%'")["totalSize"] == 0

    converted, deleted, fine = ok(writer.write("Lead", "insert", [lead("Conv", Company=unique("Converted Co ")), lead("Gone"), lead("Fine")]))
    (conversion,) = convert(sf, basic(converted))
    assert conversion["success"] == "true", conversion
    sf.Lead.delete(deleted)
    results = writer.write("Lead", "update", [{"Id": converted, "Title": "X"}, {"Id": deleted, "Title": "X"},
                                              {"Id": fine, "Title": "Still fine"}])
    assert [r.error.status_code if r.error else None for r in results] == \
        ["CANNOT_UPDATE_CONVERTED_LEAD", "ENTITY_IS_DELETED", None]
    assert sf.Lead.get(fine)["Title"] == "Still fine"


def test_locked_rows_are_sent_again_until_they_commit(org: EmulatedOrg, sf: Salesforce, writer: RecordWriter) -> None:
    ids = ok(writer.write("Lead", "insert", [lead("Lock") for _ in range(4)]))
    org.control.lock_rows("Lead", 2)
    results = writer.write("Lead", "update", [{"Id": i, "Title": "After the lock"} for i in ids])
    assert ok(results) == ids
    assert [r.attempts for r in results] == [2, 2, 1, 1]
    assert {r["Title"] for r in stored(sf, ids, "Title").values()} == {"After the lock"}


def test_a_lock_outlasting_the_attempts_is_returned(org: EmulatedOrg, make_writer: Callable[..., RecordWriter],
                                                    path: str) -> None:
    writer = make_writer(path, max_attempts=2)
    ids = ok(writer.write("Lead", "insert", [lead("Held") for _ in range(2)]))
    org.control.lock_rows("Lead", 3)  # the first row is locked on both attempts, the second only on the first
    try:
        results = writer.write("Lead", "update", [{"Id": i, "Title": "Held"} for i in ids])
    finally:
        org.control.clear_faults()
    assert [(r.error.status_code if r.error else None, r.attempts) for r in results] == \
        [("UNABLE_TO_LOCK_ROW", 2), (None, 2)]
    assert results[0].error.retryable


def test_a_request_refused_whole_is_split_down_to_the_record_at_fault(sf: Salesforce,
                                                                       make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("collections")
    existing = ok(writer.write("Lead", "insert", [lead("Exists")]))[0]
    records = [lead("Split", External_Key__c=unique("SPLIT-")) for _ in range(8)]
    records[5] = {**records[5], "Id": existing}  # Collections upsert refuses record ids: the whole call is a 400
    results = writer.write("Lead", "upsert", records, external_id_field="External_Key__c")
    assert [r.error.status_code if r.error else None for r in results] == [None] * 5 + ["INVALID_FIELD"] + [None] * 2
    assert all(r.created for r in results if r.error is None)
    assert len(stored(sf, [r.salesforce_id for r in results if r.salesforce_id], "LastName")) == 7
    assert writer.api_calls == 1 + 1 + 2 + 2 + 2  # insert, the refused call, then halves down to one record


def test_api_calls_are_counted_as_the_org_counts_them(org: EmulatedOrg, make_writer: Callable[..., RecordWriter],
                                                      path: str) -> None:
    writer = make_writer(path)
    before = org.control.api_calls()["used"]
    ok(writer.write("Lead", "insert", [lead("Count") for _ in range(450)]))
    used = org.control.api_calls()["used"] - before
    assert writer.api_calls == used
    # Collections: 200 + 200 + 50; Bulk: create, upload, close, one poll, three result files
    assert used == (3 if path == "collections" else 7)


def test_a_failed_bulk_job_returns_every_row_with_its_message(org: EmulatedOrg, sf: Salesforce,
                                                              make_writer: Callable[..., RecordWriter]) -> None:
    org.control.fail_bulk_jobs("Lead", "InvalidBatch : Failed to process query: emulated", job_type="V2Ingest")
    records = [lead("Unprocessed") for _ in range(3)]
    results = make_writer("bulk").write("Lead", "insert", records)
    assert {(r.error.status_code, r.attempts) for r in results} == {(BULK_JOB_FAILED, 1)}
    assert "InvalidBatch : Failed to process query: emulated" in results[0].error.message
    assert sf.query("SELECT COUNT() FROM Lead WHERE LastName LIKE 'Unprocessed%'")["totalSize"] == 0


def test_salesforce_error_shapes_parse_into_one_record_error() -> None:
    assert RecordError.from_bulk_cell("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --") == \
        RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",))
    assert RecordError.from_bulk_cell("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 "
                                      "records: 00Q5h0000000001AAA:--") == \
        RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records: "
                    "00Q5h0000000001AAA")
    assert RecordError.from_bulk_cell("INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--").fields == ()
    duplicate = {"duplicateResut": {"matchResults": [{"matchRecords": [
        {"record": {"attributes": {"type": "Contact"}, "Id": "0038M0000016Wv8QAE"}}]}]},
        "errorCode": "DUPLICATES_DETECTED", "message": "Use one of these records?"}
    assert RecordError.from_item(duplicate).duplicate_ids == ("0038M0000016Wv8QAE",)
    soap_spelling = {"duplicateResult": duplicate["duplicateResut"], "statusCode": "DUPLICATES_DETECTED",
                     "message": "m", "fields": []}
    assert RecordError.from_item(soap_spelling).duplicate_ids == ("0038M0000016Wv8QAE",)
    assert RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "LeadTrigger: execution of AfterUpdate\n\ncaused by: "
                       "System.DmlException: Update failed. UNABLE_TO_LOCK_ROW").retryable
    assert not RecordError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "LeadTrigger: caused by: bad value").retryable


def test_a_create_whose_answer_is_lost_is_not_sent_again(org: EmulatedOrg, sf: Salesforce,
                                                         make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("collections")
    org.control.cut_connection(r"/composite/sobjects$")  # the server commits, then the answer is cut half-way
    records = [lead("Lost") for _ in range(3)]
    results = writer.write("Lead", "insert", records)
    assert {(r.error.status_code, r.attempts, r.error.retryable) for r in results} == {(OUTCOME_UNKNOWN, 1, False)}
    names = ",".join(f"'{r['LastName']}'" for r in records)
    assert sf.query(f"SELECT COUNT() FROM Lead WHERE LastName IN ({names})")["totalSize"] == 3  # once each

    ids = [r["Id"] for r in sf.query(f"SELECT Id FROM Lead WHERE LastName IN ({names})")["records"]]
    org.control.cut_connection(r"/composite/sobjects$")  # an update may simply be sent again
    assert ok(writer.write("Lead", "update", [{"Id": i, "Title": "Resent"} for i in ids])) == ids


def test_a_bulk_upload_whose_answer_is_lost_is_aborted_and_sent_again(org: EmulatedOrg, sf: Salesforce,
                                                                      make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("bulk")
    org.control.cut_connection(r"/jobs/ingest/750\w+/batches$")
    records = [lead("Reupload") for _ in range(3)]
    results = writer.write("Lead", "insert", records)
    ok(results)
    assert [r.attempts for r in results] == [2, 2, 2]
    names = ",".join(f"'{r['LastName']}'" for r in records)
    assert sf.query(f"SELECT COUNT() FROM Lead WHERE LastName IN ({names})")["totalSize"] == 3


def test_a_spent_daily_quota_halts_the_write_and_keeps_what_was_written(org: EmulatedOrg, sf: Salesforce,
                                                                         make_writer: Callable[..., RecordWriter],
                                                                         path: str) -> None:
    writer = make_writer(path)
    org.control.inject_error(r"/composite/sobjects$|/jobs/ingest$", 403, "REQUEST_LIMIT_EXCEEDED",
                             "TotalRequests Limit exceeded.", count=-1, after=1)
    try:
        first = writer.write("Lead", "insert", [lead("Quota") for _ in range(250)])
        refused = writer.write("Lead", "insert", [lead("Quota") for _ in range(250)])
    finally:
        org.control.clear_faults()
    sent = [r for r in first if r.error is None]
    assert len(sent) == (200 if path == "collections" else 250)
    assert {(r.error.status_code, r.error.retryable, r.attempts) for r in first[len(sent):] + refused} == \
        {("REQUEST_LIMIT_EXCEEDED", False, 1)}
    assert writer.api_calls <= 9  # nothing more is sent once the org refused the quota
    assert len(stored(sf, [r.salesforce_id for r in sent], "LastName")) == len(sent)


def test_a_passing_concurrency_refusal_is_waited_out(org: EmulatedOrg, make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("collections")
    org.control.inject_error(r"/composite/sobjects$", 403, "REQUEST_LIMIT_EXCEEDED",
                             "ConcurrentPerOrgLongTxn Limit exceeded.", count=1, after=1)
    results = writer.write("Lead", "insert", [lead("Busy") for _ in range(250)])
    ok(results)
    assert [r.attempts for r in results] == [1] * 200 + [2] * 50
