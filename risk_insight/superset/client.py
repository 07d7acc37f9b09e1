"""A small client of Superset's REST API (``/api/v1``): login, CSRF, JSON calls, imports.

Writes need the bearer token from ``/api/v1/security/login`` *and* the CSRF token from
``/api/v1/security/csrf_token/`` (header ``X-CSRFToken`` plus ``Referer``), in one cookie
session; this class keeps all three.
"""

from __future__ import annotations

import json
import time
from typing import Any

import prison
import requests


class SupersetError(RuntimeError):
    """A Superset API call answered with an error status."""


class SupersetClient:
    """One logged-in session against a Superset server."""

    def __init__(self, url: str, username: str, password: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Referer"] = self.url
        tokens = self._call(
            "POST",
            "/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": True},
        )
        self.session.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        csrf = self._call("GET", "/api/v1/security/csrf_token/")["result"]
        self.session.headers["X-CSRFToken"] = csrf

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if r.status_code >= 400:
            raise SupersetError(f"{method} {path}: {r.status_code} {r.text[:1000]}")
        return r.json() if r.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``; keyword arguments go in the rison ``q`` parameter Superset expects."""
        query = {"q": prison.dumps(params)} if params else None
        return self._call("GET", path, params=query)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def put(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def find(self, resource: str, column: str, value: Any) -> list[dict[str, Any]]:
        """Rows of ``/api/v1/<resource>/`` whose ``column`` equals ``value``."""
        out = self.get(
            f"/api/v1/{resource}/",
            filters=[{"col": column, "opr": "eq", "value": value}],
            page_size=100,
        )
        return out["result"]

    def import_bundle(self, kind: str, bundle: bytes, passwords: dict[str, str]) -> None:
        """POST an export ZIP to ``/api/v1/<kind>/import/`` with ``overwrite=true``."""
        self._call(
            "POST",
            f"/api/v1/{kind}/import/",
            files={"formData": ("bundle.zip", bundle, "application/zip")},
            data={"overwrite": "true", "passwords": json.dumps(passwords)},
        )

    def chart_data(self, query_context: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of ``/api/v1/chart/data`` for a query context (what a chart asks for)."""
        out = self.post("/api/v1/chart/data", query_context)
        return out["result"][0]["data"]


def wait_healthy(url: str, timeout: float = 180.0) -> float:
    """Seconds until ``<url>/health`` answers OK; raises after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if requests.get(url.rstrip("/") + "/health", timeout=5).ok:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"Superset at {url} not healthy after {timeout:.0f} s")
