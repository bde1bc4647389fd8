"""HTTP sessions that keep the CA bundle they are given."""

from __future__ import annotations

from typing import Any

import requests


class PinnedCASession(requests.Session):
    """A requests session whose own CA bundle wins over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

    Plain requests lets those environment variables override `session.verify`, so a client pointed at an
    emulator's CA (or a company proxy's) would fail verification wherever the variables are set.
    """

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        return settings


def make_session(ca_file: str | None = None) -> requests.Session:
    session = PinnedCASession()
    if ca_file:
        session.verify = ca_file
    return session
