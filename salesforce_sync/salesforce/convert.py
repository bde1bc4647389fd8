"""Lead conversion through the SOAP partner API's `convertLead` (Salesforce has no REST resource for it): the
request built with its elements in WSDL order and every value XML-escaped, at most 100 leads per call, each
LeadConvertResult read back in input order with its errors as `RecordError`s. Each call is one API call.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import requests

from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.retries import never_sent
from salesforce_sync.salesforce.writes import OUTCOME_UNKNOWN, RecordError

LEADS_PER_CALL = 100
RESULT_MISSING = "CONVERT_RESULT_MISSING"  # our code: the answer listed no result for the lead
SOAP_VERSION_PATH = "/services/Soap/u/{version}"
_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
             'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">'
             '<soapenv:Header><urn:CallOptions><urn:client>{client}</urn:client></urn:CallOptions>'
             '<urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>'
             '<soapenv:Body><urn:convertLead>{converts}</urn:convertLead></soapenv:Body></soapenv:Envelope>')


@dataclass(frozen=True)
class LeadConvert:
    """One lead to convert: into `account_id` (and `contact_id`, which needs it) when given, else new records."""

    lead_id: str
    converted_status: str
    account_id: str | None = None
    contact_id: str | None = None
    create_opportunity: bool = False
    owner_id: str | None = None

    def xml(self) -> str:
        """The `leadConverts` element; children in WSDL sequence order (a real org ignores one out of order),
        unused ids left out (an empty one fails)."""
        parts = [("accountId", self.account_id), ("contactId", self.contact_id),
                 ("convertedStatus", self.converted_status),
                 ("doNotCreateOpportunity", "false" if self.create_opportunity else "true"),
                 ("leadId", self.lead_id), ("overwriteLeadSource", "false"), ("ownerId", self.owner_id),
                 ("sendNotificationEmail", "false")]
        return "<urn:leadConverts>" + "".join(f"<urn:{name}>{escape(value)}</urn:{name}>"
                                              for name, value in parts if value) + "</urn:leadConverts>"


@dataclass(frozen=True)
class ConvertResult:
    """What became of one lead: the records it became, or why not."""

    lead_id: str
    account_id: str | None = None
    contact_id: str | None = None
    opportunity_id: str | None = None
    error: RecordError | None = None


class LeadConverter:
    """convertLead calls for one integration's org, counted in the client's API calls."""

    def __init__(self, client: SalesforceClient, *, client_name: str = "salesforce-sync", max_attempts: int = 3) -> None:
        self.client = client
        self.client_name = client_name
        self.max_attempts = max(1, max_attempts)
        self.api_calls = 0

    def convert(self, converts: Sequence[LeadConvert]) -> list[ConvertResult]:
        """One result per lead, in input order, LEADS_PER_CALL per call. Leads refused for a passing reason
        (UNABLE_TO_LOCK_ROW, the platform busy: `RecordError.retryable`) are sent again after a growing wait, up
        to `max_attempts`. A call whose answer is lost gives its leads OUTCOME_UNKNOWN (they may be converted: the
        caller re-reads them, never resends them); a call refused whole gives each of its leads that refusal."""
        results: list[ConvertResult | None] = [None] * len(converts)
        pending = list(range(len(converts)))
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                policy = self.client.retry_policy
                policy.sleep(min(policy.max_seconds, policy.initial_seconds * 2 ** (attempt - 2)))
            again = []
            for start in range(0, len(pending), LEADS_PER_CALL):
                batch = pending[start:start + LEADS_PER_CALL]
                for index, result in zip(batch, self._call([converts[i] for i in batch])):
                    results[index] = result
                    if result.error is not None and result.error.retryable:
                        again.append(index)
            pending = again
            if not pending:
                break
        return results  # type: ignore[return-value]  # every slot is filled by the first round

    def _call(self, converts: Sequence[LeadConvert]) -> list[ConvertResult]:
        for attempt in (1, 2):
            token = self.client.token
            body = _ENVELOPE.format(client=escape(self.client_name), session=escape(token.access_token),
                                    converts="".join(c.xml() for c in converts))
            url = token.instance_url + SOAP_VERSION_PATH.format(version=self.client.api_version)
            try:
                response = self.client.http.post(url, data=body.encode(), timeout=300, headers={
                    "Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""',
                    "Sforce-Call-Options": f"client={self.client_name}"})
            except requests.RequestException as err:
                sent = not never_sent(err)
                error = RecordError(OUTCOME_UNKNOWN if sent else "CONNECTION_LOST",
                                    f"convertLead: connection lost ({type(err).__name__})")
                return [ConvertResult(c.lead_id, error=error) for c in converts]
            finally:
                self.api_calls += 1
                self.client.api_calls += 1  # the client counts REST calls itself; SOAP ones are counted here
            fault = _fault(response.content, response.status_code)
            if fault is None:
                return _results(response.content, converts)
            if fault.status_code == "INVALID_SESSION_ID" and attempt == 1:
                self.client.authenticate()
                continue
            return [ConvertResult(c.lead_id, error=fault) for c in converts]
        raise AssertionError("unreachable")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip() or None
    return None


def _fault(content: bytes, status: int) -> RecordError | None:
    """The SOAP fault of a refused call (its exceptionCode, else faultcode), or None; an answer that is no XML
    (a proxy's or the platform's own error page) is read as a REST error list, else by its HTTP status."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        try:
            return RecordError.from_item(json.loads(content)[0])
        except (ValueError, LookupError, TypeError, AttributeError):
            return RecordError(f"HTTP_{status}", f"convertLead: unreadable answer: {content[:200]!r}")
    fault = next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
    if fault is None:
        return None
    code = next((el.text for el in fault.iter() if _local(el.tag) == "exceptionCode"), None)
    code = code or (_text(fault, "faultcode") or "UNKNOWN_EXCEPTION").rsplit(":", 1)[-1]
    return RecordError(code, _text(fault, "faultstring") or code)


def _results(content: bytes, converts: Sequence[LeadConvert]) -> list[ConvertResult]:
    root = ET.fromstring(content)
    found = [el for el in root.iter() if _local(el.tag) == "result"]
    results = []
    for convert, element in zip(converts, found):
        if _text(element, "success") == "true":
            results.append(ConvertResult(convert.lead_id, _text(element, "accountId"), _text(element, "contactId"),
                                         _text(element, "opportunityId")))
            continue
        errors = [el for el in element if _local(el.tag) == "errors"]
        first = errors[0] if errors else ET.Element("errors")
        error = RecordError(_text(first, "statusCode") or "UNKNOWN_EXCEPTION", _text(first, "message") or "",
                            tuple(el.text or "" for el in first if _local(el.tag) == "fields" and el.text))
        results.append(ConvertResult(convert.lead_id, error=error))
    missing = RecordError(RESULT_MISSING, "convertLead gave no result for the lead")
    results += [ConvertResult(c.lead_id, error=missing) for c in converts[len(found):]]
    return results
