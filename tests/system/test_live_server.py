"""Over real HTTP against `baclofen-cds serve` in a subprocess, as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from cds.storage import Store
from tests.support.openapi import check_response
from tests.support.requests import HOOK_SERVICE, hook_request, stop_order_request

EXE = str(Path(sys.executable).with_name("baclofen-cds"))


def test_discovery_and_hooks_over_http(live_server):
    server = live_server()
    discovery = requests.get(server.base_url + "/cds-services", timeout=10)
    assert discovery.status_code == 200
    assert len(discovery.json()["services"]) == 5
    for hook, service_id in HOOK_SERVICE.items():
        response = requests.post(f"{server.base_url}/cds-services/{service_id}",
                                 json=hook_request(hook), timeout=10)
        check_response("POST", f"/cds-services/{service_id}", response.status_code,
                       response.json())
        assert response.status_code == 200


def test_errors_over_http_are_json_never_5xx(live_server):
    server = live_server()
    url = server.base_url + "/cds-services/baclofen-order-sign"
    cases = [
        requests.post(url, data=b"{", headers={"Content-Type": "application/json"}, timeout=10),
        requests.post(url, data=b"x", headers={"Content-Type": "text/plain"}, timeout=10),
        requests.put(url, json={}, timeout=10),
        requests.post(server.base_url + "/cds-services/nope", json={}, timeout=10),
        requests.post(url, data=b"{" * 5000, headers={"Content-Type": "application/json"},
                      timeout=10),
    ]
    assert [r.status_code for r in cases] == [400, 415, 405, 404, 400]
    for response in cases:
        assert response.json()["resourceType"] == "OperationOutcome"


def test_stop_order_card_over_http(live_server):
    server = live_server()
    response = requests.post(server.base_url + "/cds-services/baclofen-order-sign",
                             json=stop_order_request(), timeout=10)
    assert response.status_code == 200
    assert response.json()["cards"]


def test_feedback_survives_a_restart(live_server, tmp_path):
    db = tmp_path / "restart.db"
    env = {"CDS_DATABASE_URL": f"sqlite:///{db}"}
    server = live_server(env)
    body = {"feedback": [{"card": "card-1", "outcome": "overridden",
                          "outcomeTimestamp": datetime.now(UTC).isoformat()}]}
    url = server.base_url + "/cds-services/baclofen-order-sign/feedback"
    assert requests.post(url, json=body, timeout=10).json()["stored"] == 1
    server.stop()
    restarted = live_server(env)
    url = restarted.base_url + "/cds-services/baclofen-order-sign/feedback"
    assert requests.post(url, json=body, timeout=10).json() == {
        "received": 1, "stored": 0, "duplicates": 1, "unverified": 1}
    rows = Store(f"sqlite:///{db}").feedback_rows()
    assert [r["card_uuid"] for r in rows] == ["card-1"]


def test_serve_refuses_no_auth_on_a_public_address():
    result = subprocess.run([EXE, "serve", "--no-auth", "--host", "0.0.0.0", "--port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--allow-insecure" in result.stderr


def test_evaluate_prints_the_response_for_a_request_file(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(stop_order_request()))
    result = subprocess.run([EXE, "evaluate", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cards"]
    # The cards it issued are recorded by a background thread in the in-memory database.
    assert "not recorded" not in result.stderr, result.stderr


def test_evaluate_reports_a_bad_request(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"hook": "order-sign"}))
    result = subprocess.run([EXE, "evaluate", str(path), "--service", "baclofen-order-sign"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert json.loads(result.stdout)["resourceType"] == "OperationOutcome"


def test_serve_speaks_https_when_given_a_certificate(live_server, tmp_path):
    from tests.support.tls import self_signed_loopback_cert

    cert, key = self_signed_loopback_cert(tmp_path)
    server = live_server(args=["--certfile", str(cert), "--keyfile", str(key)], tls_cert=cert)
    assert server.base_url.startswith("https://")
    response = requests.post(server.base_url + "/cds-services/baclofen-patient-view",
                             json=hook_request("patient-view"), verify=str(cert), timeout=10)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


@pytest.mark.parametrize("variable, content, named", [
    ("CDS_RULES_OVERRIDE", "thresholds:\n  fever_celsius: hot\n", "fever_celsius"),
    ("CDS_TRUST_FILE", "issuers:\n  - iss: https://ehr.example.org\n", "trust"),
])
def test_serve_refuses_bad_configuration_with_a_clear_message(tmp_path, variable, content,
                                                               named):
    path = tmp_path / "config.yaml"
    path.write_text(content)
    env = {**os.environ, "CDS_AUTH": "on" if variable == "CDS_TRUST_FILE" else "off",
           variable: str(path), "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run([EXE, "serve", "--port", "1"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert "cannot start" in result.stderr and named in result.stderr.lower()
