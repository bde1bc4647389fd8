"""OAuth artefacts the org issues: access and refresh tokens, authorization codes; revocation and expiry."""

from __future__ import annotations

import json
import secrets
from typing import Any


class TokenStore:
    """Mixin of `Org`: tokens live in the `_tokens` table, so a token issued by one server process is
    honoured by another serving the same state file."""


    def issue_access_token(self, parent: str | None = None, scope: str = "api refresh_token id") -> str:
        token = self.settings.org_id[:15] + "!" + "AQ0AQ" + secrets.token_urlsafe(48).replace("-", "x").replace("_", "y")
        expires = self.now_ms() + self.settings.access_token_seconds * 1000
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, parent, expires_ms, data) VALUES (?, 'access', ?, ?, ?)",
                         (token, parent, expires, json.dumps({"scope": scope})))
        return token

    def issue_refresh_token(self, scope: str = "api refresh_token id") -> str:
        token = "5Aep861" + secrets.token_urlsafe(60).replace("-", "x").replace("_", "y")
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, data) VALUES (?, 'refresh', ?)",
                         (token, json.dumps({"scope": scope})))
        return token

    def issue_code(self, data: dict[str, Any]) -> str:
        code = "aPrx" + secrets.token_urlsafe(40) + "=="
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, expires_ms, data) VALUES (?, 'code', ?, ?)",
                         (code, self.now_ms() + 15 * 60 * 1000, json.dumps(data)))
        return code

    def token(self, token: str, kind: str) -> dict[str, Any] | None:
        """A live (unrevoked, unexpired) token's data, or None."""
        with self.read() as conn:
            row = conn.execute("SELECT parent, expires_ms, revoked, data FROM _tokens WHERE token = ? AND kind = ?",
                               (token, kind)).fetchone()
        if row is None or row[2]:
            return None
        parent, expires, _, data = row
        if expires is not None and expires <= self.now_ms():
            return None
        return {"parent": parent, **json.loads(data or "{}")}

    def consume_code(self, code: str) -> dict[str, Any] | None:
        data = self.token(code, "code")
        if data is not None:
            with self.write() as conn:
                conn.execute("UPDATE _tokens SET revoked = 1 WHERE token = ?", (code,))
        return data

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; revoking a refresh token kills its access tokens too."""
        with self.write() as conn:
            row = conn.execute("SELECT kind FROM _tokens WHERE token = ? AND revoked = 0", (token,)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE _tokens SET revoked = 1 WHERE token = ? OR parent = ?", (token, token))
        return True

    def expire_sessions(self) -> int:
        """Expire every access token now (the control knob behind 'expire every session')."""
        with self.write() as conn:
            return conn.execute("UPDATE _tokens SET expires_ms = ? WHERE kind = 'access' AND revoked = 0",
                                (self.now_ms() - 1,)).rowcount
