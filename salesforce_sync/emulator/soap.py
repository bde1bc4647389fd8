"""The SOAP partner API on `/services/Soap/u/{version}`, routed by the body's operation: `login` (what
simple-salesforce uses for username + password + security token) and `convertLead` (lead conversion has no
REST resource)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Any

from salesforce_sync.emulator.changes import call_origin
from salesforce_sync.emulator.conversion import LeadConvert
from salesforce_sync.emulator.core import Request, Response, Router

MAX_LEAD_CONVERTS = 100
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
            'envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            '{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>')
SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail><sf:{fault_type} xsi:type="sf:{fault_type}"><sf:exceptionCode>{code}</sf:exceptionCode><sf:exceptionMessage>{message}</sf:exceptionMessage></sf:{fault_type}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""
LOGIN_RESULT = """<loginResponse><result><metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox><serverUrl>{base}/services/Soap/u/{version}/{org15}</serverUrl><sessionId>{session}</sessionId><userId>{user}</userId><userInfo><organizationId>{org}</organizationId><organizationName>{org_name}</organizationName><sessionSecondsValid>{seconds}</sessionSecondsValid><userEmail>{username}</userEmail><userFullName>Integration User</userFullName><userId>{user}</userId><userName>{username}</userName><userTimeZone>America/Los_Angeles</userTimeZone><userType>Standard</userType></userInfo></result></loginResponse>"""
INVALID_LOGIN = "Invalid username, password, security token; or user locked out."
# LeadConvert's elements in WSDL sequence order; an element after a later one is ignored, as a real org does.
LEAD_CONVERT_ORDER = ("accountId", "accountRecord", "bypassAccountDedupeCheck", "bypassContactDedupeCheck",
                      "contactId", "contactRecord", "convertedStatus", "doNotCreateOpportunity", "leadId",
                      "opportunityId", "opportunityName", "opportunityRecord", "overwriteLeadSource", "ownerId",
                      "sendNotificationEmail")


def register(router: Router) -> None:
    router.add("POST", r"/services/Soap/u/(?P<version>\d+\.\d)(?:/\w+)?", "soap", api=False)(soap)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def soap(request: Request) -> Response:
    try:
        root = ET.fromstring(request.body)
    except ET.ParseError:
        return soap_fault("INVALID_LOGIN", INVALID_LOGIN, "LoginFault")  # what a login client expects back
    body = next((el for el in root if _local(el.tag) == "Body"), None)
    operation = next(iter(body), None) if body is not None else None
    if operation is None:
        return soap_fault("INVALID_OPERATION", "No operation in the SOAP body", client=True)
    name = _local(operation.tag)
    if name == "login":
        return login(request, operation)
    session = next((el.text or "" for el in root.iter() if _local(el.tag) == "sessionId"), "")
    if not session or request.org.token(session, "access") is None:
        return soap_fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    if name != "convertLead":
        return soap_fault("INVALID_OPERATION", f"No operation available for request {{urn:partner.soap.sforce.com}}{name}",
                          client=True)
    used, maximum = request.org.api_usage()
    if used >= maximum:
        return soap_fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    used, maximum = request.org.count_call("soap.convertLead")
    # The conversion's change events carry com/salesforce/api/soap/<ver>.
    with call_origin(request.path, request.params.get("version"), request.headers.get("Sforce-Call-Options")):
        return convert_lead(request, operation, used, maximum)


def login(request: Request, operation: ET.Element) -> Response:
    settings = request.org.settings
    found = {_local(el.tag): (el.text or "") for el in operation.iter()}
    if found.get("username") != settings.username or \
            found.get("password") != settings.password + settings.security_token:
        return soap_fault("INVALID_LOGIN", INVALID_LOGIN, "LoginFault")
    session = request.org.issue_access_token(scope="api")
    result = LOGIN_RESULT.format(
        base=request.server.base_url, version=request.params["version"], org15=settings.org_id[:15],
        session=session, user=request.org.integration_user_id, org=settings.org_id,
        org_name=html.escape(settings.organization_name), seconds=settings.access_token_seconds,
        username=html.escape(settings.username))
    return _xml(ENVELOPE.format(header="", body=result))


def parse_lead_convert(element: ET.Element) -> LeadConvert:
    """One `leadConverts` element; children out of WSDL order are ignored."""
    values: dict[str, str] = {}
    position = -1
    for child in element:
        name = _local(child.tag)
        if name not in LEAD_CONVERT_ORDER or LEAD_CONVERT_ORDER.index(name) <= position:
            continue
        position = LEAD_CONVERT_ORDER.index(name)
        values[name] = (child.text or "").strip()

    def flag(name: str) -> bool:
        return values.get(name, "false").lower() == "true"

    return LeadConvert(
        lead_id=values.get("leadId"), converted_status=values.get("convertedStatus"),
        account_id=values.get("accountId"), contact_id=values.get("contactId"),
        do_not_create_opportunity=flag("doNotCreateOpportunity"), opportunity_name=values.get("opportunityName"),
        overwrite_lead_source=flag("overwriteLeadSource"), owner_id=values.get("ownerId"),
        bypass_account_dedupe_check=flag("bypassAccountDedupeCheck"),
        bypass_contact_dedupe_check=flag("bypassContactDedupeCheck"))


def convert_lead(request: Request, operation: ET.Element, used: int, maximum: int) -> Response:
    converts = [parse_lead_convert(el) for el in operation if _local(el.tag) == "leadConverts"]
    if len(converts) > MAX_LEAD_CONVERTS:
        return soap_fault("LIMIT_EXCEEDED", f"Too many leadConverts: {len(converts)} (at most {MAX_LEAD_CONVERTS})")
    results = request.org.convert_leads(converts)
    header = (f"<soapenv:Header><LimitInfoHeader><limitInfo><current>{used}</current><limit>{maximum}</limit>"
              "<type>API REQUESTS</type></limitInfo></LimitInfoHeader></soapenv:Header>")
    body = "<convertLeadResponse>" + "".join(_convert_result(r) for r in results) + "</convertLeadResponse>"
    return _xml(ENVELOPE.format(header=header, body=body))


def _convert_result(result: dict[str, Any]) -> str:
    """A LeadConvertResult, elements in WSDL order; absent ids are nil."""
    def element(name: str, value: Any) -> str:
        if value is None:
            return f'<{name} xsi:nil="true"/>'
        return f"<{name}>{html.escape(str(value))}</{name}>"

    errors = "".join(
        "<errors>" + "".join(element("fields", f) for f in e["fields"]) + element("message", e["message"])
        + element("statusCode", e["statusCode"]) + "</errors>" for e in result["errors"])
    return ("<result>" + element("accountId", result["accountId"]) + element("contactId", result["contactId"])
            + errors + element("leadId", result["leadId"]) + element("opportunityId", result["opportunityId"])
            + element("relatedPersonAccountId", None) + element("success", str(result["success"]).lower())
            + "</result>")


def soap_fault(code: str, message: str, fault_type: str = "UnexpectedErrorFault", *, client: bool = False) -> Response:
    body = SOAP_FAULT.format(code=code, message=html.escape(message), fault_type=fault_type)
    if client:
        body = body.replace(f"<faultcode>sf:{code}</faultcode>", "<faultcode>soapenv:Client</faultcode>")
    return Response(500, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})


def _xml(text: str) -> Response:
    return Response(200, text.encode(), {"Content-Type": "text/xml;charset=UTF-8"})
