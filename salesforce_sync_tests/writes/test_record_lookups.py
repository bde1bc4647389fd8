"""RecordWriter's look-ups (match by email, by id, by website domain) over thousands of keys in few queries, and
our client name reaching the change events of our writes as their changeOrigin."""

from __future__ import annotations

from collections.abc import Callable

from simple_salesforce import Salesforce

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.writes import RecordWriter
from salesforce_sync_tests.emulator.pubsub_support import collect, pubsub_client


def test_find_matches_thousands_of_keys_in_few_queries(sf: Salesforce, make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("bulk")
    emails = [f"{'o' + chr(39) + 'brien' if i % 7 == 0 else 'match'}.{i}@find.test" for i in range(2_000)]
    ids = [r.salesforce_id for r in writer.write("Lead", "insert", [
        {"LastName": f"Find {i}", "Company": "Find Co", "Email": email} for i, email in enumerate(emails)])]
    assert None not in ids
    sf.Lead.delete(ids[1])  # a deleted record is no match

    reader = make_writer("collections")
    wanted = [email.upper() if i % 3 == 0 else email for i, email in enumerate(emails)] + \
        [f"nobody.{i}@find.test" for i in range(300)]
    found = reader.find("Lead", "Email", wanted, ["Id", "Email", "LastName"])
    assert sorted(r["Id"] for r in found) == sorted(ids[:1] + ids[2:])
    assert {r["Email"] for r in found} == set(emails) - {emails[1]}
    assert all("attributes" not in r for r in found)
    assert 2 <= reader.api_calls <= 12  # hundreds of keys per query, within the REST URL limit

    by_id = make_writer("collections").find("Lead", "Id", ids[:500], ["Id", "LastName"])
    assert {r["Id"]: r["LastName"] for r in by_id} == {ids[i]: f"Find {i}" for i in range(500) if i != 1}


def test_find_by_domain_returns_the_candidates_whose_website_holds_it(make_writer: Callable[..., RecordWriter]) -> None:
    writer = make_writer("collections")
    sites = ["https://www.acme-domain.test/about", "http://shop.acme-domain.test", "beta_co.test", "betaxco.test",
             "https://gamma.test"]
    ids = [r.salesforce_id for r in writer.write("Account", "insert", [
        {"Name": f"Domain Account {i}", "Website": site} for i, site in enumerate(sites)])]
    found = writer.find_by_domain("Account", ["acme-domain.test", "beta_co.test", "absent.test"], ["Id", "Website"])
    assert None not in ids
    assert sorted(r["Id"] for r in found) == sorted(ids[:3])  # "_" is no wildcard: betaxco.test is no candidate


def test_our_writes_carry_our_client_name_as_change_origin(org: EmulatedOrg, make_writer: Callable[..., RecordWriter]) -> None:
    with pubsub_client(org) as client, client.subscribe("/data/LeadChangeEvent", replay_preset="LATEST") as sub:
        collect(sub, 0)
        for path in ("collections", "bulk"):
            writer = make_writer(path, client_name="audience-writeback")
            (result,) = writer.write("Lead", "insert", [{"LastName": f"Origin {path}", "Company": "Origin Co"}])
            writer.write("Lead", "update", [{"Id": result.salesforce_id, "Title": "Echo"}])
        events = collect(sub, 4)
    assert [(e.change_type, e.change_origin.split("/")[3]) for e in events] == [
        ("CREATE", "rest"), ("UPDATE", "rest"), ("CREATE", "bulkapi"), ("UPDATE", "bulkapi")]
    assert {e.change_origin.rsplit(";", 1)[1] for e in events} == {"client=audience-writeback"}
