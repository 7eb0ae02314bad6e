"""A stub CDS service that answers every order-sign call with one card per suggestion
shape, to see what the Sandbox does with each when the clinician accepts it.

Each card replaces the Sandbox's draft (`MedicationRequest/<draft id>`, always
`request-123`) with a "taper" order that differs from the draft in medication (Baclofen
10 MG Oral Tablet, RxCUI 197391, instead of the drafted 20 MG), dose and timing, so the
next request the Sandbox sends shows exactly what it applied.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox_e2e.json_handler import JsonCorsHandler

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TAPER_MEDICATION = {"text": "Baclofen 10 MG Oral Tablet",
                    "coding": [{"system": RXNORM, "code": "197391",
                                "display": "Baclofen 10 MG Oral Tablet"}]}
SHAPES = ("delete+create", "create+delete", "update", "create")


def taper_order(draft: dict, order_id: str) -> dict:
    order = {
        "resourceType": "MedicationRequest", "id": order_id, "status": "draft",
        "intent": "order", "subject": copy.deepcopy(draft.get("subject")),
        "medicationCodeableConcept": TAPER_MEDICATION,
        "dosageInstruction": [
            {"sequence": 1, "text": "Step 1: 20 mg three times a day",
             "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
             "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg",
                                               "system": "http://unitsofmeasure.org",
                                               "code": "mg"}}]},
            {"sequence": 2, "text": "Step 2: 10 mg three times a day",
             "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
             "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg",
                                               "system": "http://unitsofmeasure.org",
                                               "code": "mg"}}]},
        ],
    }
    return order


def actions_for(shape: str, draft: dict) -> list[dict]:
    ref = f"MedicationRequest/{draft.get('id')}"
    delete = {"type": "delete", "description": "Remove the drafted order", "resourceId": ref}
    create = {"type": "create", "description": "Order the taper",
              "resource": taper_order(draft, str(uuid.uuid4()))}
    update = {"type": "update", "description": "Turn the drafted order into the taper",
              "resource": taper_order(draft, str(draft.get("id")))}
    return {"delete+create": [delete, create], "create+delete": [create, delete],
            "update": [update], "create": [create]}[shape]


def probe_card(shape: str, draft: dict) -> dict:
    return {
        "uuid": str(uuid.uuid4()), "indicator": "info",
        "summary": f"Probe: suggestion with actions {shape}",
        "source": {"label": "sandbox-e2e probe"},
        "selectionBehavior": "at-most-one",
        "suggestions": [{"label": f"Accept {shape}", "uuid": str(uuid.uuid4()),
                         "actions": actions_for(shape, draft)}],
    }


def drafted_order(body: dict) -> dict | None:
    entries = (((body.get("context") or {}).get("draftOrders") or {}).get("entry")) or []
    for entry in entries:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "MedicationRequest" and \
                resource.get("medicationCodeableConcept"):
            return resource
    return None


def shape_cards(draft: dict) -> list[dict]:
    return [probe_card(shape, draft) for shape in SHAPES]


class ProbeService:
    def __init__(self) -> None:
        self.calls: list[dict] = []  # request bodies, hooks and feedback alike
        # The cards for a drafted order; replaceable between runs (e.g. by a real card).
        self.cards_for: Callable[[dict], list[dict]] = shape_cards
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> ProbeService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def discovery(self) -> dict:
        return {"services": [{"id": "probe-order-sign", "hook": "order-sign",
                              "title": "Suggestion-shape probe",
                              "description": "One card per suggestion shape"}]}

    def answer(self, path: str, body: Any) -> tuple[int, Any]:
        if path.rstrip("/") == "/cds-services":
            return 200, self.discovery()
        if path.endswith("/feedback"):
            return 200, {}
        draft = drafted_order(body) if isinstance(body, dict) else None
        cards = self.cards_for(draft) if draft else []
        return 200, {"cards": cards}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(JsonCorsHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._send(*owner.answer(self.path, None))

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self._body() or b"null")
                owner.calls.append({"path": self.path, "body": body})
                self._send(*owner.answer(self.path, body))

        return Handler
