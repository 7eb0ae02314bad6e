"""What the Sandbox does with each suggestion shape, seen through the next request it sends.

Against the stub service (probe_service): draft Baclofen 20 MG in Rx Sign, sign, accept one
shape, sign again, and read the draft. Then the same with this service's own taper card
(fixture 01, its ids pointed at the Sandbox's draft), to see our real card in the Sandbox
whatever the clinical reading of the Sandbox's drafts currently is.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds.suggestion_clients import apply_suggestion
from sandbox_e2e import capture
from sandbox_e2e.browser import Traffic, loopback_context, watch
from sandbox_e2e.probe_service import SHAPES, ProbeService
from sandbox_e2e.results import Results
from sandbox_e2e.sandbox_ui import SandboxPage
from sandbox_e2e.service_flow import CUT_20, draft_of, draft_text

MODE = "probe"
SERVICE_CARD = "service card"
SANDBOX_DRAFT_ID = "request-123"  # the id of every order the Sandbox drafts


def our_taper_card(out: Path) -> dict:
    """This service's supervised-taper card for fixture 01 (a stop of 60 mg/day), with the
    draft it replaces renamed to the Sandbox's draft id."""
    from cds.app import create_app
    from cds.config import Settings
    from cds.fixtures import FIXTURE_DIR, load_fixture

    fixture = load_fixture(FIXTURE_DIR / "01-oral-stop-long-term.json", datetime.now(UTC))
    app = create_app(Settings(database_url=f"sqlite:///{out / 'probe-card.db'}",
                              auth_enabled=False))
    response = app.test_client().post("/cds-services/baclofen-order-sign", json=fixture.request)
    (card,) = response.get_json()["cards"]
    recorded = fixture.request["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            if action["type"] == "delete":
                action["resourceId"] = f"MedicationRequest/{SANDBOX_DRAFT_ID}"
            elif action.get("resource"):
                # A new draft beside the recorded order: it replaces that order.
                action["resource"]["id"] = SANDBOX_DRAFT_ID
                action["resource"]["priorPrescription"] = {
                    "reference": f"MedicationRequest/{recorded}"}
    return card


def probe_shape(browser: Any, probe: ProbeService, site_url: str, fhir_url: str, out: Path,
                patient_id: str, shape: str, results: Results, label: str,
                capture_dir: Path | None = None) -> None:
    traffic = Traffic(probe.base_url)
    context = loopback_context(browser, traffic)
    try:
        page = context.new_page()
        watch(page, traffic)
        ui = SandboxPage(page, traffic, site_url, fhir_url, out)
        ui.open(patient_id, [probe.base_url + "/cds-services"])
        ui.tab("Rx Sign")
        ui.choose_medication(CUT_20.search, CUT_20.product)
        before = ui.sign()
        ui.cards().first.wait_for()
        if shape == SERVICE_CARD:
            ui.view_screenshot("sandbox-rx-sign-service-card")
        feedback = ui.accept(label)
        after = ui.sign()
        if capture_dir is not None:
            for exchange, name, what in (
                    (feedback, "feedback-accepted",
                     "feedback after accepting this service's taper suggestion"),
                    (after, "order-sign-after-accepting",
                     "order-sign with the draft the Sandbox kept after accepting it")):
                capture.save(exchange, name, capture_dir, probe.base_url, fhir_url, what)
        draft = draft_of(after)
        (suggestion,) = [s for c in before.response["cards"] for s in c.get("suggestions", [])
                         if s.get("label") == label]
        # What docs/integrators.md says the Sandbox does, as cds.suggestion_clients models it.
        predicted = apply_suggestion([draft_of(before)], suggestion, "sandbox")[0]
        results.add(MODE, f"accept {shape}", draft == predicted and feedback.status == 200,
                    f"before: {draft_text(draft_of(before))}; after accepting: "
                    f"{draft_text(draft)}"
                    f"{'' if draft == predicted else f' (predicted: {draft_text(predicted)})'}")
    finally:
        context.close()


def run_probe(browser: Any, site_url: str, fhir_url: str, out: Path, patient_id: str,
              results: Results, capture_dir: Path | None = None) -> None:
    probe = ProbeService().start()
    try:
        for shape in SHAPES:
            try:
                probe_shape(browser, probe, site_url, fhir_url, out, patient_id, shape,
                            results, f"Accept {shape}")
            except Exception as error:  # report and go on with the other shapes
                results.error(MODE, f"accept {shape}", error)
        card = our_taper_card(out)
        probe.cards_for = lambda _draft: [copy.deepcopy(card)]
        recommended = next(s for s in card["suggestions"] if s.get("isRecommended"))
        try:
            probe_shape(browser, probe, site_url, fhir_url, out, patient_id, SERVICE_CARD,
                        results, recommended["label"], capture_dir)
        except Exception as error:
            results.error(MODE, f"accept {SERVICE_CARD}", error)
    finally:
        probe.stop()
