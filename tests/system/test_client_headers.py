"""Issue 27.2: no header a client sends steers routing, against the real server.

gunicorn took a client's `SCRIPT_NAME` header (loopback peers are trusted forwarders by
default): a value the path did not start with was a 500 "Configuration problem" on any
path, before authentication; one it did start with moved the path the app routed on.
Werkzeug's slash merging answered `/preview//fixtures` with a 308 whose Location was
built from the Host header.
"""

from __future__ import annotations

import http.client
import json

import pytest

from tests.support.clients import ClientKeys, write_trust_file
from tests.support.live import LiveServer

EVIL_HOST = "evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Authentication on, as deployed: the probes carry no token."""
    tmp = tmp_path_factory.mktemp("client-headers")
    trust = write_trust_file(tmp, ClientKeys("https://ehr.example.org"))
    live = LiveServer({"CDS_AUTH": "on", "CDS_TRUST_FILE": str(trust),
                       "CDS_DATABASE_URL": f"sqlite:///{tmp / 'cds.db'}"})
    live.start(tmp / "server.log")
    yield live
    live.stop()


def send(server: LiveServer, path: str, headers: dict[str, str]
         ) -> tuple[int, dict[str, str], bytes]:
    """The path and headers exactly as given (no client library normalises them)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{server.port}", **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/healthz", "/cds-services", "/", "/static/preview.css"])
@pytest.mark.parametrize("script_name", ["/nope", "/cds-services", "/healthz"])
def test_a_script_name_header_neither_breaks_nor_moves_routing(server, path, script_name):
    plain = send(server, path, {})
    steered = send(server, path, {"SCRIPT_NAME": script_name})
    assert steered[0] < 500, steered[2][:200]
    # The same answer as without the header: same status, same kind of body.
    assert steered[0] == plain[0]
    assert steered[1].get("content-type") == plain[1].get("content-type")


def test_discovery_is_still_discovery_whatever_script_name_says(server):
    """SCRIPT_NAME=/cds-services used to turn GET /cds-services into GET / (the preview
    page, outside authentication) as far as the app could tell."""
    status, headers, body = send(server, "/cds-services", {"SCRIPT_NAME": "/cds-services"})
    assert status == 401
    assert json.loads(body)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", [
    "/preview//fixtures", "/static//preview.css", "/cds-services//baclofen-order-sign",
    "/cds-services/baclofen-order-sign//feedback", "/healthz/", "/preview/fixtures/",
])
def test_the_host_header_never_comes_back_in_a_location(server, path):
    status, headers, body = send(server, path, {"Host": EVIL_HOST})
    assert "location" not in headers
    assert status not in (301, 302, 303, 307, 308)
    assert EVIL_HOST not in body.decode("utf-8", "replace")
    assert not any(EVIL_HOST in value for value in headers.values())
