"""The provider emulator's answers are data, never pages: each carries headers that keep a browser from running,
framing or sniffing them, and a page of another site in a developer's browser cannot drive the emulator."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest


def fetch(url: str, data: dict | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, _body(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, _body(error.read())


def _body(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.mark.parametrize("path", ["/sandbox/ledger", "/no/such/page"])
def test_every_answer_carries_the_security_headers(sandbox, path):
    status, headers, _ = fetch(sandbox.url + path)
    assert status in (200, 404)
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'; sandbox"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


def test_a_request_from_another_site_is_refused_and_changes_nothing(sandbox):
    sandbox.config(error_5xx=0.0)
    before = sandbox.config()
    status, _, body = fetch(f"{sandbox.url}/sandbox/config", {"error_5xx": 1.0},
                            headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://elsewhere.example"})
    assert status == 403 and body == {"error": "requests from other sites are refused"}
    assert sandbox.config() == before
    # Typed in the address bar, or asked by a program: answered.
    assert fetch(f"{sandbox.url}/sandbox/ledger", headers={"Sec-Fetch-Site": "none"})[0] == 200
