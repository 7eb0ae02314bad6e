"""Issue 15 finding 2: fhirServer could be any scheme, host and port, and received the
caller's bearer token. Each test reproduces one way in, and shows it now goes nowhere.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cds.app import create_app
from cds.config import Settings
from cds.fhir_client import NOT_FETCHED
from cds.fhir_servers import NOT_ALLOWED
from tests.support.clients import PUBLIC_BASE, ClientKeys, write_trust_file
from tests.support.fake_fhir import FakeFhirServer, bundle, json_answer
from tests.support.openapi import check_response
from tests.support.requests import hook_request, patient
from tests.support.tls import self_signed_loopback_cert

PATH = "/cds-services/baclofen-patient-view"
TOKEN = "secret-fhir-access-token"
EXT = "org.baclofen-cds"


def serve_everything(server: FakeFhirServer) -> FakeFhirServer:
    server.routes.update({
        "/Patient/": json_answer(patient()),
        "/MedicationRequest": json_answer(bundle([])),
        "/Observation": json_answer(bundle([])),
        "/Condition": json_answer(bundle([])),
    })
    return server


def fallback_request(fhir_server: str) -> dict:
    request = hook_request("patient-view")
    request["prefetch"] = {}
    request["fhirServer"] = fhir_server
    request["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer",
                                    "expires_in": 300, "scope": "patient/*.read",
                                    "subject": "baclofen-cds"}
    return request


@pytest.fixture
def internal():
    """A plain-http 'internal admin' endpoint on loopback, as in the finding."""
    server = serve_everything(FakeFhirServer()).start()
    yield server
    server.stop()


@pytest.fixture
def tls_fhir(tmp_path):
    cert, key = self_signed_loopback_cert(tmp_path)
    server = serve_everything(FakeFhirServer(tls=(cert, key))).start()
    server.cert = cert
    yield server
    server.stop()


def auth_on_app(tmp_path: Path, client: ClientKeys, **settings):
    trust = write_trust_file(tmp_path, client)
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}",
                               auth_enabled=True, trust_file=str(trust),
                               public_base_urls=(PUBLIC_BASE,), **settings))


def call(app, client: ClientKeys | None, request: dict):
    headers = client.headers(PATH) if client else {}
    response = app.test_client().post(PATH, json=request, headers=headers)
    check_response("POST", PATH, response.status_code, response.get_json())
    return response


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "[::1]", "0x7f000001",
])
def test_authenticated_client_cannot_aim_the_fallback_at_loopback(tmp_path, internal, host):
    ehr = ClientKeys("https://ehr.example.org",
                     fhir_servers=["https://fhir.hospital-a.example.org/r4"])
    app = auth_on_app(tmp_path, ehr)
    for scheme in ("http", "https"):
        url = f"{scheme}://{host}:{internal.port}/internal/admin"
        response = call(app, ehr, fallback_request(url))
        assert response.status_code == 412
        assert NOT_ALLOWED in response.get_json()["issue"][0]["diagnostics"]
    assert internal.seen == []


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.5/fhir",
    "https://192.168.1.1/fhir",
    "https://[fe80::1]/fhir",
])
def test_private_and_link_local_fhir_servers_are_refused_before_any_traffic(tmp_path, url):
    ehr = ClientKeys("https://ehr.example.org", fhir_servers=["https://fhir.example.org"])
    response = call(auth_on_app(tmp_path, ehr), ehr, fallback_request(url))
    assert response.status_code == 412
    assert NOT_ALLOWED in response.get_json()["issue"][0]["diagnostics"]


def test_allow_listed_name_resolving_to_loopback_is_blocked_at_connect(tmp_path, internal):
    """The name is on the list, but its address is not public and the entry does not say
    private_network: the connection is never opened."""
    ehr = ClientKeys("https://ehr.example.org",
                     fhir_servers=[f"https://localhost:{internal.port}"])
    response = call(auth_on_app(tmp_path, ehr), ehr,
                    fallback_request(f"https://localhost:{internal.port}"))
    assert response.status_code == 412
    assert NOT_FETCHED in response.get_json()["issue"][0]["diagnostics"]
    assert internal.seen == []


def test_allow_listed_private_server_is_fetched_over_https(tmp_path, tls_fhir):
    ehr = ClientKeys("https://ehr.example.org", fhir_servers=[
        {"url": f"https://127.0.0.1:{tls_fhir.port}", "private_network": True}])
    app = auth_on_app(tmp_path, ehr, fhir_ca_bundle=str(tls_fhir.cert))
    response = call(app, ehr, fallback_request(tls_fhir.base_url))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["extension"][EXT]["fetchedFromFhirServer"] == [
        "conditions", "medications", "observations", "patient"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in tls_fhir.seen)


def test_each_client_reaches_only_its_own_fhir_servers(tmp_path, tls_fhir):
    own = {"url": f"https://127.0.0.1:{tls_fhir.port}/a", "private_network": True}
    a = ClientKeys("https://ehr-a.example.org", fhir_servers=[own])
    b = ClientKeys("https://ehr-b.example.org", fhir_servers=["https://fhir-b.example.org"])
    trust = write_trust_file(tmp_path, a, b)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}",
                              auth_enabled=True, trust_file=str(trust),
                              public_base_urls=(PUBLIC_BASE,),
                              fhir_ca_bundle=str(tls_fhir.cert)))
    response = call(app, b, fallback_request(tls_fhir.base_url + "/a"))
    assert response.status_code == 412
    assert tls_fhir.seen == []


def test_local_trial_reaches_loopback_but_nothing_else(client, internal):
    assert call(client.application, None, fallback_request(internal.base_url)
                ).status_code == 200
    for url in ("https://fhir.elsewhere.example/r4", "http://10.0.0.5/fhir",
                "http://169.254.169.254/latest/meta-data/"):
        response = call(client.application, None, fallback_request(url))
        assert response.status_code == 412
        assert NOT_ALLOWED in response.get_json()["issue"][0]["diagnostics"]


def test_netrc_and_proxy_variables_are_ignored(client, internal, tmp_path, monkeypatch):
    """With ~/.netrc present, requests replaced the bearer token with the service's own
    credentials towards a host the caller chose; proxy variables would route the call."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login service password service-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    response = call(client.application, None, fallback_request(internal.base_url))
    assert response.status_code == 200
    assert internal.seen and all(
        r.headers["authorization"] == f"Bearer {TOKEN}" for r in internal.seen)


def test_failures_do_not_tell_a_closed_port_from_an_error_answer(client, internal):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    internal.routes["/Observation"] = json_answer({"resourceType": "OperationOutcome"}, 500)
    answers = []
    for url in (f"http://127.0.0.1:{closed_port}", internal.base_url):
        request = fallback_request(url)
        request["prefetch"] = {"medications": bundle([])}
        response = call(client.application, None, request)
        extension = response.get_json()["extension"][EXT]
        answers.append({u["prefetchKey"]: u["reason"] for u in extension["unavailableData"]}
                       ["observations"])
    assert answers[0] == answers[1] == NOT_FETCHED


def test_the_address_checked_is_the_address_connected_to(internal, monkeypatch):
    """The name is resolved once; the socket connects to that checked address, so a
    second, different DNS answer (rebinding) is never used."""
    from cds import outbound_http

    answers = []
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        answers.append(host)
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(outbound_http.socket, "getaddrinfo", resolve)
    checked: list[str] = []
    session = outbound_http.checked_session(lambda a: checked.append(str(a)) or True)
    response = session.get(f"http://rebind.example:{internal.port}/Patient/1", timeout=5)
    assert response.status_code == 200
    assert answers == ["rebind.example"] and checked == ["127.0.0.1"]
    assert internal.seen[-1].headers["host"] == f"rebind.example:{internal.port}"
