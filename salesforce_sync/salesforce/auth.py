"""Getting an access token: refresh token, JWT bearer, client credentials or password, against
production, sandbox, a custom My Domain or an emulator's login URL."""

from __future__ import annotations

import html
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import requests

from salesforce_sync.config.secrets import Credentials

LOGIN_HINTS = {
    "invalid_grant": "the refresh token was revoked or expired, the user is locked, or the app is not approved "
                     "for this user; reconnect the integration",
    "invalid_client_id": "the connected app's consumer key is unknown to this org (wrong environment?); "
                         "check the client id and reconnect",
    "invalid_client": "the connected app's consumer secret is wrong; check it and reconnect",
    "unsupported_grant_type": "this org does not accept that auth method",
    "invalid_request": "the org refused the request (client credentials work only on a My Domain host)",
    "INVALID_LOGIN": "the username, password or security token is wrong, or the user is locked out; check them",
}
SOAP_LOGIN_VERSION = "62.0"
"""The partner API version of the SOAP login; the session it returns works with every REST version."""
_SOAP_LOGIN_BODY = (
    '<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login><urn:username>{username}</urn:username>'
    '<urn:password>{password}</urn:password></urn:login></env:Body></env:Envelope>')


@dataclass(frozen=True, repr=False)
class Token:
    access_token: str
    instance_url: str
    identity_url: str
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r})"


class SalesforceAuthError(Exception):
    """Salesforce refused to issue a token; says why in Salesforce's words and what to do."""

    def __init__(self, integration: str, error: str, description: str) -> None:
        hint = LOGIN_HINTS.get(error, "check the integration's credentials and reconnect")
        super().__init__(f"integration {integration!r}: Salesforce refused the login: {error}: {description} ({hint})")
        self.error = error
        self.description = description


def obtain_token(credentials: Credentials, login_url: str, http: requests.Session, *, integration: str) -> Token:
    """One token request; a rotated refresh token comes back in `Token.refresh_token`. Password login
    without a connected app (no client id) is Salesforce's SOAP login."""
    if credentials.method == "password" and not credentials.client_id:
        return soap_login(credentials, login_url, http, integration=integration)
    url = login_url.rstrip("/") + "/services/oauth2/token"
    data: dict[str, str] = {}
    auth = None
    if credentials.method == "refresh_token":
        data = {"grant_type": "refresh_token", "client_id": credentials.client_id or "",
                "refresh_token": credentials.refresh_token or ""}
        if credentials.client_secret:
            data["client_secret"] = credentials.client_secret
    elif credentials.method == "password":
        data = {"grant_type": "password", "client_id": credentials.client_id or "",
                "client_secret": credentials.client_secret or "", "username": credentials.username or "",
                "password": (credentials.password or "") + (credentials.security_token or "")}
    elif credentials.method == "client_credentials":
        data = {"grant_type": "client_credentials"}
        auth = (credentials.client_id or "", credentials.client_secret or "")
    elif credentials.method == "jwt_bearer":
        assertion = jwt.encode(
            {"iss": credentials.client_id, "sub": credentials.username, "aud": login_url.rstrip("/"),
             "exp": int(time.time()) + 180},
            _private_key(credentials), algorithm="RS256")
        data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    else:
        raise ValueError(f"integration {integration!r}: unknown auth method {credentials.method!r}")
    response = http.post(url, data=data, auth=auth, timeout=60)
    try:
        body = response.json()
    except ValueError:
        body = {"error": str(response.status_code), "error_description": response.text[:200]}
    if response.status_code != 200:
        raise SalesforceAuthError(integration, body.get("error", str(response.status_code)),
                                  body.get("error_description", ""))
    return Token(body["access_token"], body["instance_url"], body.get("id", ""), body.get("refresh_token"))


def soap_login(credentials: Credentials, login_url: str, http: requests.Session, *, integration: str) -> Token:
    """The partner API's `login` call: username and password followed by the security token."""
    secret = (credentials.password or "") + (credentials.security_token or "")
    body = _SOAP_LOGIN_BODY.format(username=html.escape(credentials.username or ""), password=html.escape(secret))
    response = http.post(f"{login_url.rstrip('/')}/services/Soap/u/{SOAP_LOGIN_VERSION}", data=body.encode(),
                         headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"}, timeout=60)
    try:
        found = {element.tag.rsplit("}", 1)[-1]: element.text or ""
                 for element in ET.fromstring(response.content).iter()}
    except ET.ParseError:
        found = {}
    if response.status_code != 200 or "sessionId" not in found:
        raise SalesforceAuthError(integration, found.get("exceptionCode") or str(response.status_code),
                                  found.get("exceptionMessage") or response.text[:200])
    server = urlsplit(found["serverUrl"])
    identity = f"{login_url.rstrip('/')}/id/{found['organizationId']}/{found['userId']}"
    return Token(found["sessionId"], f"{server.scheme}://{server.netloc}", identity)


def _private_key(credentials: Credentials) -> str:
    if credentials.private_key_file is not None:
        return Path(credentials.private_key_file).read_text()
    return credentials.private_key or ""


def with_rotated_refresh_token(credentials: Credentials, token: Token) -> Credentials:
    if token.refresh_token and credentials.method == "refresh_token":
        return replace(credentials, refresh_token=token.refresh_token)
    return credentials
