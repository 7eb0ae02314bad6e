"""How CDS clients apply an accepted suggestion to their draft orders.

One code path for "apply a suggestion", used by the preview page (POST /preview/apply),
the contract tests and tools/sandbox-e2e (which checks the Sandbox model below against a
real Sandbox build):

- `full`: a client that applies every action of the suggestion, as CDS Hooks means it
  (all or nothing): deletes first, an update replaces the draft of the same type and id
  in its place, a create adds a draft.
- `sandbox`: the CDS Hooks Sandbox (github.com/cds-hooks/sandbox, TAKE_SUGGESTION in
  src/reducers/medication-reducers.js). It keeps one draft order and walks the actions in
  order until one it can use: a `create` or `update` whose resource has a
  medicationCodeableConcept with text and a first coding with a code sets the draft's
  medication to that text and code (labelled RxNorm, display = text), whichever resource
  the action names; a `delete` empties the draft (no medication, no dose: what the Sandbox
  sends once its medication is cleared, while its form still shows the old name). Nothing
  else of the resource is applied: dose, timing, dates, notes, identifiers stay the
  draft's own.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

Client = Literal["full", "sandbox"]
CLIENTS: tuple[Client, ...] = ("full", "sandbox")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# What createFhirResource sends only once a medication is chosen (the rest stays).
# Far above any real suggestion or order basket; bounds the work a hostile body can ask for
# (each action looks its draft up among all of them).
MAX_ACTIONS = 50
MAX_DRAFTS = 500
_SANDBOX_MEDICATION_FIELDS = ("medicationCodeableConcept", "dosageInstruction",
                              "dispenseRequest", "intent", "category")


class SuggestionError(ValueError):
    """The suggestion cannot be applied to these drafts (the message names why, no data)."""


def apply_suggestion(drafts: list[dict], suggestion: dict, client: Client = "full"
                     ) -> list[dict]:
    """The draft orders after `client` applies `suggestion`; `drafts` is left untouched."""
    actions = suggestion.get("actions") if isinstance(suggestion, dict) else None
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise SuggestionError("the suggestion has no list of actions")
    if not all(isinstance(d, dict) for d in drafts):
        raise SuggestionError("every draft order must be a JSON object")
    if len(actions) > MAX_ACTIONS or len(drafts) > MAX_DRAFTS:
        raise SuggestionError(f"at most {MAX_ACTIONS} actions and {MAX_DRAFTS} draft orders")
    if client == "full":
        return _apply_all(drafts, actions)
    if client == "sandbox":
        return _apply_like_the_sandbox(drafts, actions)
    raise SuggestionError(f"unknown client {client!r}; one of {', '.join(CLIENTS)}")


def _apply_all(drafts: list[dict], actions: list[dict]) -> list[dict]:
    result = [copy.deepcopy(d) for d in drafts]
    for action in sorted(actions, key=lambda a: a.get("type") != "delete"):
        kind = action.get("type")
        if kind == "delete":
            resource_type, _, rid = str(action.get("resourceId", "")).partition("/")
            result.remove(_single(result, resource_type, rid, "delete"))
        elif kind in ("create", "update"):
            resource = action.get("resource")
            if not isinstance(resource, dict):
                raise SuggestionError(f"a {kind} action has no resource")
            if kind == "update":
                old = _single(result, resource.get("resourceType"), resource.get("id"), kind)
                result[result.index(old)] = copy.deepcopy(resource)
            else:
                result.append(copy.deepcopy(resource))
        else:
            raise SuggestionError("an action's type is not create, update or delete")
    return result


def _single(drafts: list[dict], resource_type: Any, rid: Any, kind: str) -> dict:
    matching = [d for d in drafts if d.get("resourceType") == resource_type
                and d.get("id") == rid]
    if len(matching) != 1:
        raise SuggestionError(f"a {kind} action names no single draft order")
    return matching[0]


def _apply_like_the_sandbox(drafts: list[dict], actions: list[dict]) -> list[dict]:
    if len(drafts) != 1:
        raise SuggestionError("the Sandbox keeps exactly one draft order")
    draft = copy.deepcopy(drafts[0])
    for action in actions:
        kind = action.get("type")
        if kind in ("create", "update"):
            resource = action.get("resource")
            concept = resource.get("medicationCodeableConcept") \
                if isinstance(resource, dict) else None
            text = concept.get("text") if isinstance(concept, dict) else None
            codings = concept.get("coding") if isinstance(concept, dict) else None
            first = codings[0] if isinstance(codings, list) and codings else None
            code = first.get("code") if isinstance(first, dict) else None
            if text and code:
                draft["medicationCodeableConcept"] = {
                    "text": text, "coding": [{"display": text, "system": RXNORM, "code": code}]}
                return [draft]
        elif kind == "delete":
            for field in _SANDBOX_MEDICATION_FIELDS:
                draft.pop(field, None)
            return [draft]
    return [draft]
