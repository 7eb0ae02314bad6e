"""The patients on the loopback FHIR server: the recorded data of fhir_fixtures scenarios.

Each patient is one scenario's prefetch (patient, medications, observations, conditions),
its dates resolved against now, so the cards to expect are the scenario's own `expect`,
kept by whoever maintains the clinical fixtures. Draft orders are not taken from the
fixtures: in Rx View and Rx Sign the Sandbox drafts them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds.fixtures import FIXTURE_DIR, load_fixture
from cds.resources import flatten

# patient-view: scenarios whose record alone gives a card (or none).
PATIENT_VIEW_SCENARIOS = (
    "13-fever-fahrenheit-after-stop",  # emergency evaluation
    "27-ended-recently-no-signs",  # supervised taper
    "19-intrathecal-early-signs",  # intrathecal early signs
    "11-never-on-baclofen",  # no card
)
# Rx View / Rx Sign, by what the patient takes now: oral baclofen 20 mg tablets three times
# a day (60 mg/day) for 8 months; an oral solution (2 mg/mL, 7.5 mL three times a day); a
# free-text dose the service cannot read ("take as directed").
ORDER_SCENARIOS = {
    "tablets": "01-oral-stop-long-term",
    "liquid": "taper-stop-liquid-2mg-per-ml",
    "unreadable dose": "25-unknown-dose-stop",
}
RECORD_KEYS = ("patient", "medications", "observations", "conditions")


@dataclass(frozen=True)
class ScenarioPatient:
    scenario: str
    patient_id: str
    expected_kinds: tuple[str, ...]  # patient-view cards by kind, as the scenario expects
    resources: tuple[dict, ...]

    @property
    def current_medication_code(self) -> str | None:
        """The first coding's code of the active baclofen order: what "keep the current
        dose" must leave in the Sandbox's draft."""
        for resource in self.resources:
            if resource.get("resourceType") == "MedicationRequest" and \
                    resource.get("status") == "active":
                codings = (resource.get("medicationCodeableConcept") or {}).get("coding") or []
                return codings[0].get("code") if codings else None
        return None


def scenario_patient(name: str, now: datetime) -> ScenarioPatient:
    path = FIXTURE_DIR / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"sandbox-e2e: scenario {name} is not in {FIXTURE_DIR}; "
                         "update tools/sandbox-e2e/sandbox_e2e/patients.py")
    fixture = load_fixture(path, now)
    prefetch = fixture.request.get("prefetch") or {}
    resources = [r for key in RECORD_KEYS for r in flatten(prefetch.get(key))]
    kinds = tuple(c["kind"] for c in fixture.expect.get("cards", []))
    return ScenarioPatient(name, fixture.request["context"]["patientId"], kinds,
                           tuple(resources))


def all_patients(now: datetime) -> tuple[dict[str, ScenarioPatient], list[ScenarioPatient]]:
    """The order-flow patients (by what they take) and the patient-view patients."""
    orders = {what: scenario_patient(name, now) for what, name in ORDER_SCENARIOS.items()}
    return orders, [scenario_patient(n, now) for n in PATIENT_VIEW_SCENARIOS]
