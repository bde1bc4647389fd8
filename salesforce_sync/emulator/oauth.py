"""OAuth 2.0 and identity: the token endpoint's five grants, authorize with PKCE, identity, userinfo,
revoke. (The SOAP login simple-salesforce uses for username + password + security token is in soap.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography import x509

from salesforce_sync.emulator.core import Request, Response, Router

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")  # no client_credentials here
JWT_MAX_LIFETIME_SECONDS = 600  # Salesforce wants exp at most a few minutes ahead


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json({"error": error, "error_description": description}, status)


def register(router: Router) -> None:
    router.add("POST", r"/services/oauth2/token", "oauth.token", api=False)(token)
    router.add("GET", r"/services/oauth2/authorize", "oauth.authorize", api=False)(authorize)
    router.add("GET", r"/services/oauth2/userinfo", "oauth.userinfo", api=False)(userinfo)
    router.add("POST", r"/services/oauth2/revoke", "oauth.revoke", api=False)(revoke)
    router.add("GET", r"/services/oauth2/revoke", "oauth.revoke", api=False)(revoke)
    router.add("GET", r"/id/(?P<org>\w{15,18})/(?P<user>\w{15,18})", "identity", api=False)(identity)


def _token_response(request: Request, access: str, *, scope: str, refresh: str | None = None,
                    signed: bool = True) -> Response:
    settings = request.org.settings
    identity = f"{request.server.base_url}/id/{settings.org_id}/{request.org.integration_user_id}"
    issued = str(int(time.time() * 1000))
    body: dict[str, Any] = {"access_token": access}
    if signed:
        digest = hmac.new(settings.client_secret.encode(), (identity + issued).encode(), hashlib.sha256).digest()
        body["signature"] = base64.b64encode(digest).decode()
    body.update({"scope": scope, "instance_url": request.server.base_url, "id": identity, "token_type": "Bearer"})
    if signed:
        body["issued_at"] = issued
    if refresh:
        body["refresh_token"] = refresh
    return Response.json(body)


def _request_host(request: Request) -> str:
    """The host the client addressed (the harness's adapter keeps it in the Host header), without the port."""
    return request.headers.get("Host", "").rsplit(":", 1)[0].lower()


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret")


def token(request: Request) -> Response:
    form = request.form()
    settings = request.org.settings
    grant = form.get("grant_type")
    if not grant:
        return oauth_error("invalid_request", "grant type is missing")
    client_id, secret = _client_credentials(request, form)
    if grant != JWT_GRANT:
        if client_id != settings.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        secret_required = grant in ("password", "client_credentials", "authorization_code")
        if (secret is not None or secret_required) and secret != settings.client_secret:
            return oauth_error("invalid_client", "invalid client credentials")
    if grant == "password":
        if form.get("username") != settings.username or \
                form.get("password") != settings.password + settings.security_token:
            return oauth_error("invalid_grant", "authentication failure")
        return _token_response(request, request.org.issue_access_token(scope="api"), scope="api")
    if grant == "refresh_token":
        refresh = form.get("refresh_token", "")
        data = request.org.token(refresh, "refresh")
        if data is None:
            return oauth_error("invalid_grant", "expired access/refresh token")
        rotated = None
        if settings.rotate_refresh_tokens:
            rotated = request.org.issue_refresh_token(data.get("scope", "api refresh_token id"))
            request.org.revoke(refresh)
            refresh = rotated
        access = request.org.issue_access_token(parent=refresh, scope=data.get("scope", "api refresh_token id"))
        return _token_response(request, access, scope=data.get("scope", "api refresh_token id"), refresh=rotated)
    if grant == "client_credentials":
        if _request_host(request) in GENERIC_LOGIN_HOSTS:
            return oauth_error("invalid_request", "request not supported on this domain")
        return _token_response(request, request.org.issue_access_token(scope="api"), scope="api")
    if grant == JWT_GRANT:
        return _jwt_bearer(request, form.get("assertion", ""))
    if grant == "authorization_code":
        code = request.org.consume_code(form.get("code", ""))
        if code is None:
            return oauth_error("invalid_grant", "invalid authorization code")
        if code["redirect_uri"] != form.get("redirect_uri"):
            return oauth_error("invalid_grant", "redirect_uri must match configuration")
        if code.get("code_challenge"):
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if challenge != code["code_challenge"]:
                return oauth_error("invalid_grant", "invalid code verifier")
        scope = code.get("scope") or "api refresh_token id"
        refresh = request.org.issue_refresh_token(scope) if "refresh_token" in scope or "offline_access" in scope else None
        return _token_response(request, request.org.issue_access_token(parent=refresh, scope=scope),
                               scope=scope, refresh=refresh)
    return oauth_error("unsupported_grant_type", "grant type not supported")


def _jwt_bearer(request: Request, assertion: str) -> Response:
    """RS256 assertion signed by the connected app's certificate (or bare public key), checked on the org clock."""
    settings = request.org.settings
    if not settings.jwt_public_key_pem:
        return oauth_error("invalid_grant", "invalid assertion")
    try:
        claims = jwt.decode(assertion, _verification_key(settings.jwt_public_key_pem), algorithms=["RS256"],
                            options={"verify_aud": False, "verify_exp": False,
                                     "require": ["iss", "sub", "aud", "exp"]})
        expires = float(claims["exp"])  # simple-salesforce sends exp as a string of seconds
    except (jwt.PyJWTError, ValueError, TypeError):
        return oauth_error("invalid_grant", "invalid assertion")
    audience = claims["aud"] if isinstance(claims["aud"], str) else (claims["aud"] or [""])[0]
    if audience.rstrip("/") not in (*LOGIN_AUDIENCES, request.server.base_url):
        return oauth_error("invalid_grant", "audience is invalid")
    now = request.org.now_ms() / 1000
    if expires <= now:
        # Salesforce's own wording for an expired assertion.
        return oauth_error("invalid_grant", "expired authorization code")
    if expires > now + JWT_MAX_LIFETIME_SECONDS:
        return oauth_error("invalid_grant", "invalid assertion")
    if claims["iss"] != settings.client_id:
        return oauth_error("invalid_client_id", "client identifier invalid")
    if claims["sub"] != settings.username:
        return oauth_error("invalid_grant", "user hasn't approved this consumer")
    return _token_response(request, request.org.issue_access_token(scope="api"), scope="api", signed=False)


def _verification_key(pem: str) -> Any:
    """The public key of the connected app's uploaded certificate, or the PEM itself when it is a bare key."""
    if "BEGIN CERTIFICATE" in pem:
        return x509.load_pem_x509_certificate(pem.encode()).public_key()
    return pem


def _redirect_allowed(request: Request, redirect_uri: str) -> bool:
    """Configured redirect URIs, and any loopback URL (the CLI's local redirect listener)."""
    host = urlsplit(redirect_uri).hostname or ""
    return redirect_uri in request.org.settings.redirect_uris or host in ("localhost", "127.0.0.1", "::1")


def authorize(request: Request) -> Response:
    """Auto-approves the org's user and redirects with a single-use code (PKCE S256 honoured)."""
    q = request.query
    if q.get("client_id") != request.org.settings.client_id:
        return Response(400, b"<html><body>error=invalid_client_id: client identifier invalid</body></html>",
                        {"Content-Type": "text/html;charset=UTF-8"})
    redirect_uri = q.get("redirect_uri", "")
    if not _redirect_allowed(request, redirect_uri):
        return Response(400, b"<html><body>error=redirect_uri_mismatch: redirect_uri must match configuration"
                             b"</body></html>", {"Content-Type": "text/html;charset=UTF-8"})
    separator = "&" if "?" in redirect_uri else "?"
    if q.get("response_type") != "code":
        params = {"error": "unsupported_response_type", "error_description": "response type not supported"}
    elif q.get("code_challenge_method", "S256") != "S256" and q.get("code_challenge"):
        params = {"error": "invalid_request", "error_description": "invalid code challenge method"}
    else:
        params = {"code": request.org.issue_code({"redirect_uri": redirect_uri, "scope": q.get("scope", ""),
                                                  "code_challenge": q.get("code_challenge")})}
    if "state" in q:
        params["state"] = q["state"]
    return Response.redirect(redirect_uri + separator + urlencode(params))


def _identity_payload(request: Request) -> dict[str, Any]:
    settings = request.org.settings
    base = request.server.base_url
    user_id = request.org.integration_user_id
    version = request.query.get("version", "{version}")
    return {
        "id": f"{base}/id/{settings.org_id}/{user_id}", "asserted_user": True, "user_id": user_id,
        "organization_id": settings.org_id, "username": settings.username,
        "nick_name": settings.username.split("@")[0], "display_name": "Integration User",
        "email": settings.username, "email_verified": True, "first_name": "Integration", "last_name": "User",
        "timezone": "America/Los_Angeles",
        "photos": {"picture": f"{base}/profilephoto/005/F", "thumbnail": f"{base}/profilephoto/005/T"},
        "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": "US", "addr_zip": None,
        "mobile_phone": None, "mobile_phone_verified": False, "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": {
            "enterprise": f"{base}/services/Soap/c/{version}/{settings.org_id[:15]}",
            "metadata": f"{base}/services/Soap/m/{version}/{settings.org_id[:15]}",
            "partner": f"{base}/services/Soap/u/{version}/{settings.org_id[:15]}",
            "rest": f"{base}/services/data/v{version}/", "sobjects": f"{base}/services/data/v{version}/sobjects/",
            "search": f"{base}/services/data/v{version}/search/", "query": f"{base}/services/data/v{version}/query/",
            "recent": f"{base}/services/data/v{version}/recent/",
            "tooling_rest": f"{base}/services/data/v{version}/tooling/", "profile": f"{base}/{user_id}",
            "custom_domain": base,
        },
        "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
        "utcOffset": -28800000, "last_modified_date": "2024-03-01T10:00:00Z", "is_app_installed": True,
    }


def _bad_token() -> Response:
    return Response(403, b"Bad_OAuth_Token", {"Content-Type": "text/plain;charset=UTF-8"})


def identity(request: Request) -> Response:
    token_value = request.bearer()
    if not token_value or request.org.token(token_value, "access") is None:
        return _bad_token()
    return Response.json(_identity_payload(request))


def userinfo(request: Request) -> Response:
    token_value = request.bearer()
    if not token_value or request.org.token(token_value, "access") is None:
        return _bad_token()
    ident = _identity_payload(request)
    return Response.json({
        "sub": ident["id"], "user_id": ident["user_id"], "organization_id": ident["organization_id"],
        "preferred_username": ident["username"], "nickname": ident["nick_name"], "name": ident["display_name"],
        "email": ident["email"], "email_verified": True, "given_name": ident["first_name"],
        "family_name": ident["last_name"], "zoneinfo": ident["timezone"], "photos": ident["photos"],
        "profile": ident["urls"]["profile"], "picture": ident["photos"]["picture"], "address": {"country": "US"},
        "is_salesforce_integration_user": False, "urls": ident["urls"], "active": True, "user_type": "STANDARD",
        "language": "en_US", "locale": "en_US", "utcOffset": -28800000, "updated_at": "2024-03-01T10:00:00Z",
        "is_app_installed": True,
    })


def revoke(request: Request) -> Response:
    value = request.form().get("token") or request.query.get("token", "")
    if not request.org.revoke(value):
        return oauth_error("unsupported_token_type", "this token type is not supported")
    return Response.empty(200)


__all__ = ["register"]
