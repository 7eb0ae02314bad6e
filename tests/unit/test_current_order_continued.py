"""The keep-current-dose suggestion: a copy of the current order's regimen, valid FHIR."""

from cds.taper.suggestions import current_order_continued

CURRENT = {
    "resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
    "intent": "order", "subject": {"reference": "Patient/p"},
    "medicationCodeableConcept": {"text": "baclofen 10 mg tablet"},
    "dosageInstruction": [{"text": "10 mg three times a day"}],
}


def _continued(supply: dict | None) -> dict:
    current = dict(CURRENT)
    if supply is not None:
        current["dispenseRequest"] = supply
    return current_order_continued(current, "MedicationRequest/draft-1",
                                   {"requester": {"reference": "Practitioner/x"}}, "u-1")


def test_a_validity_period_alone_leaves_no_empty_dispense_request() -> None:
    order = _continued({"validityPeriod": {"start": "2026-01-01"}})
    assert "dispenseRequest" not in order


def test_the_supply_is_kept_without_the_old_validity() -> None:
    order = _continued({"validityPeriod": {"start": "2026-01-01"},
                        "quantity": {"value": 90, "unit": "tablet"}})
    assert order["dispenseRequest"] == {"quantity": {"value": 90, "unit": "tablet"}}
    assert order["priorPrescription"] == {"reference": "MedicationRequest/mr-1"}
    assert order["status"] == "draft" and order["id"] == "draft-1"


def test_a_current_order_without_an_id_is_continued_without_naming_it() -> None:
    current = {k: v for k, v in CURRENT.items() if k != "id"}
    order = current_order_continued(current, "MedicationRequest/draft-1", {}, "u-1")
    assert "priorPrescription" not in order
    assert order["dosageInstruction"] == CURRENT["dosageInstruction"]
