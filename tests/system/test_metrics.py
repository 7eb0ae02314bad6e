"""GET /metrics: real numbers after real traffic, closed label sets, operator token,
and sums across gunicorn workers in multiprocess mode."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import requests
from prometheus_client.parser import text_string_to_metric_families

from cds.fhir_client import FhirFetchError
from cds.metrics import failure_kind
from tests.support.fake_fhir import bundle, json_answer
from tests.support.requests import hook_request, patient, searched_paths, stop_order_request

ORDER = "/cds-services/baclofen-order-sign"


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(client, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def feedback(client, card: str, outcome: str, **extra) -> dict:
    entry = {"card": card, "outcome": outcome,
             "outcomeTimestamp": datetime.now(UTC).isoformat(), **extra}
    response = client.post(ORDER + "/feedback", json={"feedback": [entry]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_hook_calls_count_requests_latency_and_cards(client):
    before = scrape(client)
    response = client.post(ORDER, json=stop_order_request())
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards, "the stop order should produce a card"
    after = scrape(client)

    labels = {"endpoint": "/cds-services/<service_id>", "service": "baclofen-order-sign",
              "hook": "order-sign"}
    requests_total = "cds_http_requests_total"
    assert sample(after, requests_total, status="200", **labels) - sample(
        before, requests_total, status="200", **labels) == 1
    count = "cds_http_request_duration_seconds_count"
    assert sample(after, count, **labels) - sample(before, count, **labels) == 1
    assert sample(after, "cds_http_request_duration_seconds_sum", **labels) > 0
    for card in cards:
        kind = card["extension"]["org.baclofen-cds"]["kind"]
        card_labels = {"service": "baclofen-order-sign", "kind": kind,
                       "indicator": card["indicator"]}
        assert sample(after, "cds_cards_total", **card_labels) - sample(
            before, "cds_cards_total", **card_labels) >= 1


def test_made_up_services_and_hooks_do_not_become_labels(client):
    client.post("/cds-services/made-up-service-123", json=hook_request("order-sign"))
    client.post(ORDER, json={**hook_request("order-sign"), "hook": "made-up-hook-456"})
    text = scrape(client)
    assert "made-up" not in text
    assert sample(text, "cds_http_requests_total", service="other", status="404") >= 1
    assert sample(text, "cds_http_requests_total", service="baclofen-order-sign", hook="other",
                  status="400") >= 1


def test_feedback_counted_by_outcome_and_known_reason_code(client):
    card = client.post(ORDER, json=stop_order_request()).get_json()["cards"][0]
    reason = card["overrideReasons"][1]
    before = scrape(client)
    feedback(client, card["uuid"], "overridden", overrideReason={"reason": reason})
    feedback(client, card["uuid"], "overridden",
             overrideReason={"reason": {"code": "made-up-reason-789"}})
    # A retried delivery of the same entry is stored once and counted once.
    entry_time = datetime.now(UTC).isoformat()
    for _ in range(2):
        client.post(ORDER + "/feedback", json={"feedback": [{
            "card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": entry_time,
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]})
    after = scrape(client)

    def delta(**labels):
        return sample(after, "cds_feedback_total", **labels) - sample(
            before, "cds_feedback_total", **labels)

    assert delta(outcome="overridden", override_reason=reason["code"]) == 1
    assert delta(outcome="overridden", override_reason="other") == 1
    assert delta(outcome="accepted", override_reason="none") == 1
    assert "made-up-reason" not in after


def test_fhir_fallback_fetches_failures_and_time(client, fake_fhir):
    searched = searched_paths("patient-view")
    fake_fhir.routes.update({path: json_answer(bundle([])) for path in searched.values()})
    fake_fhir.routes.update({
        "/Patient/": json_answer(patient()),
        "/Observation": json_answer({"resourceType": "OperationOutcome"}, status=500),
    })
    fetched = len(searched) + 1  # and the Patient
    request = hook_request("patient-view")
    request.pop("prefetch")
    request["fhirServer"] = fake_fhir.base_url
    request["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer",
                                    "expires_in": 300, "scope": "patient/*.read",
                                    "subject": "baclofen-cds"}
    before = scrape(client)
    assert client.post("/cds-services/baclofen-patient-view", json=request).status_code == 200
    after = scrape(client)

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("cds_fhir_fetches_total", result="ok") == fetched - 1
    assert delta("cds_fhir_fetches_total", result="failed") == 1
    assert delta("cds_fhir_fetch_failures_total", reason="http_status") == 1
    assert delta("cds_fhir_fetch_duration_seconds_count") == fetched
    assert delta("cds_fhir_fetch_duration_seconds_sum") > 0


def test_failure_kinds_are_a_closed_set_of_labels():
    assert failure_kind(FhirFetchError("http_status")) == "http_status"
    assert failure_kind(FhirFetchError("blocked_address")) == "blocked_address"
    assert failure_kind(FhirFetchError("made-up")) == "other"
    assert failure_kind(ValueError("x")) == "other"


def test_operator_token_protects_metrics_and_reports(make_app):
    client = make_app(metrics_token="op-token-abc").test_client()
    for path in ("/metrics", "/reports/feedback"):
        assert client.get(path).status_code == 401
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "op-token" not in wrong.get_data(as_text=True)
        assert client.get(path, headers={"Authorization": "Bearer op-token-abc"}).status_code \
            == 200


def test_multiprocess_mode_sums_over_gunicorn_workers(live_server, tmp_path):
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    server = live_server({"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=3)
    calls = 24
    with requests.Session() as session:
        for _ in range(calls):
            # A new connection each time, so the calls spread over the workers.
            response = requests.post(server.base_url + ORDER, json=stop_order_request(),
                                     timeout=10)
            assert response.status_code == 200
        scrapes = [session.get(server.base_url + "/metrics", timeout=10).text for _ in range(6)]
    worker_files = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
    for text in scrapes:
        # Whichever worker answers the scrape, it reports every worker's calls.
        assert sample(text, "cds_http_requests_total", service="baclofen-order-sign",
                      status="200") == calls
        assert sample(text, "cds_cards_total", kind="supervised-taper") == calls
    assert len(worker_files) >= 2, "the calls should have reached more than one worker"


def test_serve_with_several_workers_sums_metrics_without_configuration(live_server, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server = live_server(workers=2)
    calls = 16
    for _ in range(calls):
        assert requests.post(server.base_url + ORDER, json=stop_order_request(),
                             timeout=10).status_code == 200
    for _ in range(4):
        text = requests.get(server.base_url + "/metrics", timeout=10).text
        assert sample(text, "cds_http_requests_total", service="baclofen-order-sign",
                      status="200") == calls


def test_the_metrics_directory_is_private_to_the_service(live_server, tmp_path):
    """Issue 26.6: it was made again 0755 with 0644 files, in a shared temporary
    directory. A stale file of an earlier run goes; the directory and the workers'
    files are the service user's alone."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir(mode=0o755)
    metrics_dir.chmod(0o755)
    (metrics_dir / "counter_1.db").write_bytes(b"stale")
    server = live_server({"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, workers=2)
    assert requests.post(server.base_url + ORDER, json=stop_order_request(),
                         timeout=10).status_code == 200
    assert requests.get(server.base_url + "/metrics", timeout=10).status_code == 200
    assert metrics_dir.stat().st_mode & 0o777 == 0o700
    files = list(metrics_dir.glob("*.db"))
    assert files and not (metrics_dir / "counter_1.db").exists()
    assert all(f.stat().st_mode & 0o077 == 0 for f in files), [oct(f.stat().st_mode)
                                                               for f in files]


def test_a_metrics_directory_that_is_a_link_is_refused(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "prom"
    link.symlink_to(target)
    (target / "keep.db").write_bytes(b"not ours to delete")
    exe = Path(sys.executable).with_name("baclofen-cds")
    done = subprocess.run([str(exe), "serve", "--port", "0", "--workers", "2"],
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(link),
                               "CDS_AUTH": "off",
                               "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a link" in done.stderr
    assert (target / "keep.db").exists()
