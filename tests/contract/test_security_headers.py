"""Issue 27.4: one set of browser security headers on every response.

Only the route `/` set the page's Content-Security-Policy; the same file served as
`/static/preview.html` (and every other answer) went out without it, without nosniff
and framable. tests/system/test_preview_browser.py shows Chromium refusing to frame it.
"""

from __future__ import annotations

import pytest

from cds.app import create_app
from cds.config import Settings
from tests.contract.test_service_boundary import auth_on_settings
from tests.support.requests import hook_request

EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app for the module (building one takes a second): these calls change nothing
    that another test here reads."""
    database = tmp_path_factory.mktemp("security-headers") / "cds.db"
    settings = Settings(database_url=f"sqlite:///{database}", auth_enabled=False)
    return create_app(settings).test_client()


def assert_protected(response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    policy = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy


@pytest.mark.parametrize("path", [
    "/", "/static/preview.html", "/static/preview.js", "/static/preview.css",
    "/preview/fixtures", "/cds-services", "/healthz", "/readyz", "/metrics",
    "/no-such-page", "/static/no-such-file",
])
def test_every_get_carries_the_headers(client, path):
    assert_protected(client.get(path))


def test_both_addresses_of_the_page_send_identical_headers(client):
    names = ("Content-Security-Policy", *EXPECTED)
    root, static = client.get("/"), client.get("/static/preview.html")
    assert root.status_code == static.status_code == 200
    assert [root.headers.get(n) for n in names] == [static.headers.get(n) for n in names]


def test_hook_answers_and_errors_carry_the_headers(client):
    assert_protected(client.post("/cds-services/baclofen-patient-view",
                                 json=hook_request("patient-view")))
    assert_protected(client.post("/cds-services/baclofen-patient-view", data=b"{",
                                 content_type="application/json"))
    assert_protected(client.put("/cds-services/baclofen-patient-view", json={}))


def test_refusals_before_any_handler_carry_the_headers(tmp_path):
    """A 401 from authentication is answered before routing reaches a handler."""
    closed = create_app(auth_on_settings(tmp_path)).test_client()
    refused = closed.get("/cds-services")
    assert refused.status_code == 401
    assert_protected(refused)
