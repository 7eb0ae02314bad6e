"""Large but legal records (issue 26.2): every step is linear in the record (measured by
bench/growth.py at 1k, 10k and 100k resources), and the resources the facts read in
detail are capped (CDS_MAX_READ_RESOURCES) with a clear 413 beyond the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.payloads import _iso, bundle, order_sign_stop
from cds.config import Settings


def _with_administrations(count: int) -> dict:
    now = datetime.now(UTC)
    request = order_sign_stop(now, observations=0, medication_requests=4)
    request["prefetch"]["administrations"] = bundle([{
        "resourceType": "MedicationAdministration", "id": f"ma-{i}", "status": "completed",
        "medicationCodeableConcept": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197391"}]},
        "subject": {"reference": "Patient/bench-patient"},
        "effectiveDateTime": _iso(now - timedelta(hours=8 * (i + 1))),
        "dosage": {"dose": {"value": 20, "unit": "mg"}},
    } for i in range(count)])
    return request


def test_the_default_cap_is_far_above_a_real_record() -> None:
    # A year of three doses a day, the prefetch templates' pages and a long order history
    # stay under it; the realistic benchmark record reads 6 resources in detail.
    assert Settings().max_read_resources == 1000


def test_a_record_within_the_cap_is_answered(make_app) -> None:
    client = make_app(max_read_resources=60).test_client()
    response = client.post("/cds-services/baclofen-order-sign", json=_with_administrations(40))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_a_record_past_the_cap_is_refused_with_a_clear_413(make_app) -> None:
    client = make_app(max_read_resources=60).test_client()
    response = client.post("/cds-services/baclofen-order-sign", json=_with_administrations(80))
    assert response.status_code == 413
    message = response.get_json()["issue"][0]["diagnostics"]
    assert "reads at most 60" in message and "reads in detail" in message
