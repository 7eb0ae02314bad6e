"""cds.suggestion_clients: applying a suggestion as a full client and as the Sandbox does
(the Sandbox model is checked against a real Sandbox build by tools/sandbox-e2e)."""

from __future__ import annotations

import copy

import pytest

from cds.suggestion_clients import RXNORM, SuggestionError, apply_suggestion
from tests.support.sandbox import sandbox_draft_order

SANDBOX_DRAFT = sandbox_draft_order("pat-1", "197392", "Baclofen 20 MG Oral Tablet")
TAPER = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
         "medicationCodeableConcept": {
             "text": "baclofen oral tablet",
             "coding": [{"system": RXNORM, "code": "1292", "display": "baclofen"},
                        {"system": "http://snomed.info/sct", "code": "6102009"}]},
         "dosageInstruction": [{"sequence": 1, "text": "Step 1"}],
         "identifier": [{"system": "https://example.org/x", "value": "1"}]}


def suggestion(*actions: dict) -> dict:
    return {"label": "x", "actions": list(actions)}


def update(resource: dict) -> dict:
    return {"type": "update", "description": "d", "resource": resource}


DELETE = {"type": "delete", "description": "d", "resourceId": "MedicationRequest/request-123"}


def test_a_full_client_applies_every_action_in_place() -> None:
    other = {"resourceType": "MedicationRequest", "id": "other"}
    drafts = [SANDBOX_DRAFT, other]
    created = {"resourceType": "MedicationRequest", "id": "new"}
    result = apply_suggestion(drafts, suggestion(update(TAPER),
                                                 {"type": "create", "resource": created}))
    assert result == [TAPER, other, created]
    assert drafts == [SANDBOX_DRAFT, other], "the drafts given are not changed"
    assert apply_suggestion(drafts, suggestion(DELETE)) == [other]


@pytest.mark.parametrize("bad", [
    suggestion({"type": "update", "resource": {"resourceType": "MedicationRequest",
                                               "id": "missing"}}),
    suggestion({"type": "delete", "resourceId": "MedicationRequest/missing"}),
    suggestion({"type": "replace"}), suggestion({"type": "create"}), {"actions": "x"},
    {"label": "no actions"}, suggestion(*[DELETE] * 51),
])
def test_a_full_client_refuses_what_it_cannot_apply(bad: dict) -> None:
    with pytest.raises(SuggestionError):
        apply_suggestion([SANDBOX_DRAFT], bad)


def test_the_sandbox_takes_only_the_text_and_first_code_labelled_rxnorm() -> None:
    (draft,) = apply_suggestion([SANDBOX_DRAFT], suggestion(update(TAPER)), "sandbox")
    expected = copy.deepcopy(SANDBOX_DRAFT)
    expected["medicationCodeableConcept"] = {
        "text": "baclofen oral tablet",
        "coding": [{"display": "baclofen oral tablet", "system": RXNORM, "code": "1292"}]}
    assert draft == expected  # dose, timing, identifiers: the draft's own


def test_the_sandbox_labels_any_first_code_rxnorm() -> None:
    snomed_first = copy.deepcopy(TAPER)
    snomed_first["medicationCodeableConcept"]["coding"].reverse()
    (draft,) = apply_suggestion([SANDBOX_DRAFT], suggestion(update(snomed_first)), "sandbox")
    assert draft["medicationCodeableConcept"]["coding"] == [
        {"display": "baclofen oral tablet", "system": RXNORM, "code": "6102009"}]


def test_the_sandbox_applies_the_first_action_it_can_use_only() -> None:
    no_text = copy.deepcopy(TAPER)
    del no_text["medicationCodeableConcept"]["text"]
    actions = suggestion(update(no_text), DELETE, update(TAPER))
    (draft,) = apply_suggestion([SANDBOX_DRAFT], actions, "sandbox")
    assert "medicationCodeableConcept" not in draft and "dosageInstruction" not in draft
    assert draft["subject"] == SANDBOX_DRAFT["subject"]  # an emptied draft, not none
    (kept,) = apply_suggestion([SANDBOX_DRAFT], suggestion(update(no_text)), "sandbox")
    assert kept == SANDBOX_DRAFT


def test_the_sandbox_keeps_one_draft() -> None:
    with pytest.raises(SuggestionError):
        apply_suggestion([SANDBOX_DRAFT, SANDBOX_DRAFT], suggestion(DELETE), "sandbox")
    with pytest.raises(SuggestionError):
        apply_suggestion([SANDBOX_DRAFT], suggestion(DELETE), "epic")  # type: ignore[arg-type]
