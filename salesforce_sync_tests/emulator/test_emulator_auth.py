"""Every OAuth grant, SOAP login, identity, userinfo and revoke, driven by simple-salesforce and requests over
verified HTTPS against a served emulator."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession

from salesforce_sync.emulator import EmulatedOrg

SMALL = {"Lead": 20, "Contact": 10, "CampaignMember": 5}
REDIRECT_URI = "http://localhost:8765/callback"


@pytest.fixture(scope="module")
def shared_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """One org for the tests that leave no trace another test could notice (no clock, settings or revokes)."""
    with EmulatedOrg(counts=SMALL, tls_dir=tmp_path_factory.mktemp("tls")) as org:
        yield org


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg]) -> EmulatedOrg:
    """A fresh org for a test that moves the clock, changes settings or revokes the org's refresh token."""
    return emulated_org_factory(counts=SMALL)


def token_call(org: EmulatedOrg, data: dict[str, str], **kwargs: Any) -> requests.Response:
    """POST the token endpoint at login.salesforce.com, as tap-salesforce and airbyte do."""
    return org.session().post("https://login.salesforce.com/services/oauth2/token", data=data, timeout=30, **kwargs)


def refresh(org: EmulatedOrg, refresh_token: str) -> requests.Response:
    info = org.connection_info()
    return token_call(org, {"grant_type": "refresh_token", "client_id": info["client_id"],
                            "client_secret": info["client_secret"], "refresh_token": refresh_token})


def lead_count(sf: Salesforce) -> int:
    return sf.query("SELECT COUNT() FROM Lead")["totalSize"]


def with_token(org: EmulatedOrg, access_token: str) -> Salesforce:
    return Salesforce(instance_url=org.base_url, session_id=access_token, session=org.session())


# ---- SOAP and password logins -------------------------------------------------------------------------------

def test_soap_login_with_security_token_reaches_the_org(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    sf = Salesforce(username=info["username"], password=info["password"], security_token=info["security_token"],
                    session=shared_org.session())
    assert sf.sf_instance == urlsplit(shared_org.base_url).netloc
    assert sf.session_id.startswith(info["org_id"][:15] + "!")
    assert lead_count(sf) == shared_org.org.count("Lead")


def test_soap_login_with_a_wrong_token_is_invalid_login(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=info["username"], password=info["password"], security_token="WRONG",
                   session=shared_org.session())
    assert caught.value.code == "INVALID_LOGIN"


def test_oauth_password_grant_needs_password_plus_token_and_the_right_secret(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    sf = Salesforce(username=info["username"], password=info["password"] + info["security_token"],
                    consumer_key=info["client_id"], consumer_secret=info["client_secret"], session=shared_org.session())
    assert lead_count(sf) == shared_org.org.count("Lead")

    with pytest.raises(SalesforceAuthenticationFailed) as no_token:
        Salesforce(username=info["username"], password=info["password"], consumer_key=info["client_id"],
                   consumer_secret=info["client_secret"], session=shared_org.session())
    assert (no_token.value.code, no_token.value.auth_message) == ("invalid_grant", "authentication failure")

    with pytest.raises(SalesforceAuthenticationFailed) as bad_secret:
        Salesforce(username=info["username"], password=info["password"] + info["security_token"],
                   consumer_key=info["client_id"], consumer_secret="nope", session=shared_org.session())
    assert bad_secret.value.code == "invalid_client"


def test_token_response_has_the_fields_and_signature_clients_read(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    body = refresh(shared_org, info["refresh_token"]).json()
    assert body["instance_url"] == shared_org.base_url
    assert body["token_type"] == "Bearer"
    assert body["id"].endswith(f"/id/{info['org_id']}/{shared_org.org.integration_user_id}")
    digest = hmac.new(info["client_secret"].encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    expected = base64.b64encode(digest.digest()).decode()
    assert body["signature"] == expected
    assert "refresh_token" not in body  # rotation is off by default


# ---- refresh tokens -------------------------------------------------------------------------------------------

def test_refresh_token_rotation_replaces_the_old_refresh_token(org: EmulatedOrg) -> None:
    org.control.update_settings(rotate_refresh_tokens=True)
    first = refresh(org, org.connection_info()["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != org.connection_info()["refresh_token"]

    reused = refresh(org, org.connection_info()["refresh_token"])
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}

    second = refresh(org, rotated)
    assert second.status_code == 200
    assert lead_count(with_token(org, second.json()["access_token"])) == org.org.count("Lead")


def test_revoked_refresh_token_is_invalid_grant_and_its_access_tokens_die(org: EmulatedOrg) -> None:
    refresh_token = org.connection_info()["refresh_token"]
    access = refresh(org, refresh_token).json()["access_token"]
    sf = with_token(org, access)
    assert lead_count(sf) > 0

    revoked = org.session().post(f"{org.base_url}/services/oauth2/revoke", data={"token": refresh_token}, timeout=30)
    assert (revoked.status_code, revoked.content) == (200, b"")

    again = refresh(org, refresh_token)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    with pytest.raises(SalesforceExpiredSession):
        lead_count(sf)


def test_revoking_an_unknown_token_is_unsupported_token_type(shared_org: EmulatedOrg) -> None:
    response = shared_org.session().get(f"{shared_org.base_url}/services/oauth2/revoke", params={"token": "nope"},
                                        timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"


def test_revoking_an_access_token_ends_that_session_only(shared_org: EmulatedOrg) -> None:
    doomed, kept = shared_org.simple_salesforce(), shared_org.simple_salesforce()
    doomed.oauth2("revoke", params={"token": doomed.session_id}, method="POST")
    with pytest.raises(SalesforceExpiredSession):
        lead_count(doomed)
    assert lead_count(kept) > 0


# ---- client credentials ---------------------------------------------------------------------------------------

def test_client_credentials_with_basic_auth_through_a_my_domain(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    sf = Salesforce(consumer_key=info["client_id"], consumer_secret=info["client_secret"], domain="emulated.my",
                    session=shared_org.session())
    assert lead_count(sf) == shared_org.org.count("Lead")

    with pytest.raises(SalesforceAuthenticationFailed) as wrong:
        Salesforce(consumer_key=info["client_id"], consumer_secret="wrong", domain="emulated.my",
                   session=shared_org.session())
    assert wrong.value.code == "invalid_client"


def test_client_credentials_is_refused_on_the_generic_login_host(shared_org: EmulatedOrg) -> None:
    info = shared_org.connection_info()
    basic = base64.b64encode(f"{info['client_id']}:{info['client_secret']}".encode()).decode()
    response = token_call(shared_org, {"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "request not supported on this domain"}


# ---- JWT bearer ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate, as uploaded to a connected app."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "salesforce-sync test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def assertion(org: EmulatedOrg, key: rsa.RSAPrivateKey, **claims: Any) -> str:
    info = org.connection_info()
    payload = {"iss": info["client_id"], "sub": info["username"], "aud": "https://login.salesforce.com",
               "exp": int(time.time()) + 180, **claims}
    return jwt.encode(payload, private_pem(key), algorithm="RS256")


def jwt_grant(org: EmulatedOrg, signed: str) -> requests.Response:
    return token_call(org, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": signed})


def test_jwt_bearer_with_the_apps_certificate_logs_simple_salesforce_in(shared_org: EmulatedOrg, rsa_key) -> None:
    shared_org.control.update_settings(jwt_public_key_pem=certificate_pem(rsa_key))
    info = shared_org.connection_info()
    sf = Salesforce(username=info["username"], consumer_key=info["client_id"], privatekey=private_pem(rsa_key),
                    session=shared_org.session())
    assert lead_count(sf) == shared_org.org.count("Lead")


def test_jwt_bearer_with_a_bare_public_key_and_its_response_shape(shared_org: EmulatedOrg, rsa_key) -> None:
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    shared_org.control.update_settings(jwt_public_key_pem=public)
    body = jwt_grant(shared_org, assertion(shared_org, rsa_key)).json()
    assert body["instance_url"] == shared_org.base_url
    assert "signature" not in body and "refresh_token" not in body


@pytest.mark.parametrize(("claims", "error"), [
    ({"aud": "https://evil.example.com"}, ("invalid_grant", "audience is invalid")),
    ({"sub": "someone.else@example.com"}, ("invalid_grant", "user hasn't approved this consumer")),
    ({"iss": "3MVG9NotTheApp"}, ("invalid_client_id", "client identifier invalid")),
    ({"exp": int(time.time()) + 3600}, ("invalid_grant", "invalid assertion")),
])
def test_jwt_bearer_rejects_bad_claims(shared_org: EmulatedOrg, rsa_key, claims, error) -> None:
    shared_org.control.update_settings(jwt_public_key_pem=certificate_pem(rsa_key))
    response = jwt_grant(shared_org, assertion(shared_org, rsa_key, **claims))
    assert response.status_code == 400
    assert (response.json()["error"], response.json()["error_description"]) == error


def test_jwt_bearer_expiry_is_judged_by_the_org_clock(org: EmulatedOrg, rsa_key) -> None:
    org.control.update_settings(jwt_public_key_pem=certificate_pem(rsa_key))
    signed = assertion(org, rsa_key)
    assert jwt_grant(org, signed).status_code == 200
    org.control.move_clock(dt.timedelta(minutes=4))
    expired = jwt_grant(org, signed)
    assert expired.json() == {"error": "invalid_grant", "error_description": "expired authorization code"}


def test_jwt_bearer_signed_by_another_key_is_invalid(shared_org: EmulatedOrg, rsa_key) -> None:
    shared_org.control.update_settings(jwt_public_key_pem=certificate_pem(rsa_key))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = shared_org.connection_info()
    with pytest.raises(SalesforceAuthenticationFailed) as caught:
        Salesforce(username=info["username"], consumer_key=info["client_id"], privatekey=private_pem(stranger),
                   session=shared_org.session())
    assert (caught.value.code, caught.value.auth_message) == ("invalid_grant", "invalid assertion")


# ---- authorization code with PKCE --------------------------------------------------------------------------------

def authorize(org: EmulatedOrg, challenge: str, state: str = "xyz") -> dict[str, list[str]]:
    info = org.connection_info()
    response = org.session().get(f"{org.base_url}/services/oauth2/authorize", params={
        "response_type": "code", "client_id": info["client_id"], "redirect_uri": REDIRECT_URI, "state": state,
        "scope": "api refresh_token", "code_challenge": challenge, "code_challenge_method": "S256"},
        allow_redirects=False, timeout=30)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return parse_qs(location.query)


def exchange(org: EmulatedOrg, code: str, verifier: str) -> requests.Response:
    info = org.connection_info()
    return token_call(org, {"grant_type": "authorization_code", "code": code, "client_id": info["client_id"],
                            "client_secret": info["client_secret"], "redirect_uri": REDIRECT_URI,
                            "code_verifier": verifier})


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_authorization_code_with_pkce_gives_tokens_once(shared_org: EmulatedOrg) -> None:
    verifier, challenge = pkce_pair()
    params = authorize(shared_org, challenge, state="s-42")
    assert params["state"] == ["s-42"]
    granted = exchange(shared_org, params["code"][0], verifier)
    assert granted.status_code == 200
    body = granted.json()
    assert lead_count(with_token(shared_org, body["access_token"])) > 0
    assert refresh(shared_org, body["refresh_token"]).status_code == 200

    replay = exchange(shared_org, params["code"][0], verifier)
    assert replay.json() == {"error": "invalid_grant", "error_description": "invalid authorization code"}


def test_authorization_code_with_the_wrong_verifier_is_refused(shared_org: EmulatedOrg) -> None:
    _, challenge = pkce_pair()
    code = authorize(shared_org, challenge)["code"][0]
    response = exchange(shared_org, code, pkce_pair()[0])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}


def test_authorize_refuses_an_unregistered_redirect_without_redirecting(shared_org: EmulatedOrg) -> None:
    response = shared_org.session().get(f"{shared_org.base_url}/services/oauth2/authorize", params={
        "response_type": "code", "client_id": shared_org.connection_info()["client_id"],
        "redirect_uri": "https://attacker.example.com/cb"}, allow_redirects=False, timeout=30)
    assert response.status_code == 400
    assert "redirect_uri_mismatch" in response.text


# ---- identity, userinfo, session lifetime ----------------------------------------------------------------------

def test_identity_url_and_userinfo_describe_the_integration_user(shared_org: EmulatedOrg) -> None:
    body = refresh(shared_org, shared_org.connection_info()["refresh_token"]).json()
    session = shared_org.session()
    identity = session.get(body["id"], params={"version": "59.0"},
                           headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=30)
    assert identity.status_code == 200
    ident = identity.json()
    assert ident["username"] == shared_org.connection_info()["username"]
    assert ident["organization_id"] == shared_org.connection_info()["org_id"]
    assert ident["urls"]["rest"] == f"{shared_org.base_url}/services/data/v59.0/"

    userinfo = with_token(shared_org, body["access_token"]).oauth2("userinfo")
    assert userinfo["sub"] == body["id"]
    assert userinfo["preferred_username"] == ident["username"]

    refused = session.get(body["id"], headers={"Authorization": "Bearer not-a-token"}, timeout=30)
    assert (refused.status_code, refused.text) == (403, "Bad_OAuth_Token")


def test_access_tokens_expire_after_access_token_seconds_of_the_org_clock(org: EmulatedOrg) -> None:
    org.control.update_settings(access_token_seconds=600)
    sf = org.simple_salesforce()
    org.control.move_clock(dt.timedelta(seconds=590))
    assert lead_count(sf) > 0
    org.control.move_clock(dt.timedelta(seconds=20))
    with pytest.raises(SalesforceExpiredSession) as caught:
        lead_count(sf)
    assert caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    assert lead_count(org.simple_salesforce()) > 0  # a new token lives again
