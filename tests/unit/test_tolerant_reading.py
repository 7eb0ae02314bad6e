"""Orders that break the R4 model only where the service does not read are still read."""

from __future__ import annotations

import copy
import json

from cds.resources import check_resources
from tests.support.sandbox import sandbox_draft_order, sparse_draft_order

BACLOFEN = ("197391", "Baclofen 10 MG Oral Tablet")


def _draft() -> dict:
    return sandbox_draft_order("pat-1", *BACLOFEN)


def test_sandbox_single_object_category_and_reason_are_read_as_lists():
    draft = _draft()
    original = copy.deepcopy(draft)
    checked = check_resources([draft], lenient_missing=True)
    assert checked.skipped == []
    (read,) = checked.resources
    assert read["category"] == [original["category"]]
    assert read["reasonCode"] == [original["reasonCode"]]
    assert read["dosageInstruction"] == original["dosageInstruction"]
    assert draft == original, "the client's own dict is left alone"
    (adjustment,) = checked.adjusted
    assert adjustment.as_json() == {"resourceType": "MedicationRequest",
                                    "readAsList": ["category", "reasonCode"]}


def test_sparse_sandbox_draft_is_still_read_without_adjustment():
    checked = check_resources([sparse_draft_order("pat-1")], lenient_missing=True)
    assert len(checked.resources) == 1 and checked.adjusted == [] and checked.skipped == []


def test_an_unread_element_that_breaks_the_model_is_ignored():
    draft = _draft()
    draft["note"] = "Patient Jane Doe asked to stop"  # R4: a list of Annotation
    draft["priority"] = 3
    checked = check_resources([draft], lenient_missing=True)
    (read,) = checked.resources
    assert "note" not in read and "priority" not in read
    assert read["medicationCodeableConcept"] == draft["medicationCodeableConcept"]
    (adjustment,) = checked.adjusted
    assert adjustment.ignored == ("note", "priority")
    assert "Jane" not in json.dumps(adjustment.as_json())


def test_unknown_elements_are_dropped_and_counted_never_named():
    draft = _draft()
    draft["Jane Doe 1970-01-01"] = "x"
    checked = check_resources([draft], lenient_missing=True)
    (read,) = checked.resources
    assert "Jane Doe 1970-01-01" not in read
    (adjustment,) = checked.adjusted
    assert adjustment.unrecognised == 1
    assert "Jane" not in json.dumps(adjustment.as_json())


def test_an_element_the_reading_needs_still_skips_the_order():
    draft = _draft()
    draft["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = "three"
    checked = check_resources([draft], lenient_missing=True)
    assert checked.resources == [] and checked.adjusted == []
    (skipped,) = checked.skipped
    assert "dosageInstruction" in skipped.reason


def test_a_bad_status_still_skips_the_order():
    draft = _draft()
    draft["status"] = {"code": "stopped"}
    checked = check_resources([draft], lenient_missing=True)
    assert checked.resources == [] and len(checked.skipped) == 1


def test_recorded_orders_are_read_the_same_way():
    """Prefetched orders (no leniency for missing fields) get the same tolerance."""
    order = _draft()
    order["status"] = "active"
    order["note"] = {"text": "free text"}  # one Annotation instead of a list: read as a list
    order["reasonReference"] = "Condition/1"  # not a list of References: ignored
    checked = check_resources([order])
    (read,) = checked.resources
    assert read["note"] == [{"text": "free text"}] and "reasonReference" not in read
    (adjustment,) = checked.adjusted
    assert adjustment.as_json() == {
        "resourceType": "MedicationRequest", "ignoredElements": ["reasonReference"],
        "readAsList": ["category", "note", "reasonCode"]}


def test_a_nested_single_object_is_read_as_a_list_too():
    draft = _draft()
    dosage = draft["dosageInstruction"][0]
    dosage["doseAndRate"] = dosage["doseAndRate"][0]
    checked = check_resources([draft], lenient_missing=True)
    (read,) = checked.resources
    assert read["dosageInstruction"][0]["doseAndRate"] == [dosage["doseAndRate"]]
    assert "dosageInstruction.doseAndRate" in checked.adjusted[0].read_as_list


def test_other_resource_types_have_lists_read_but_nothing_dropped():
    patient = {"resourceType": "Patient", "id": "p", "name": {"family": "Doe"}}
    checked = check_resources([patient])
    # Patient.name as one object is read as a list, like any single object for a list.
    assert checked.resources[0]["name"] == [{"family": "Doe"}]
    bad = {"resourceType": "Patient", "id": "p", "gender": 17}
    assert check_resources([bad]).resources == []
