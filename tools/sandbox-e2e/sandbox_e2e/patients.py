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
# Rx View / Rx Sign: on oral baclofen 20 mg three times a day (60 mg/day) for 8 months.
ORDER_SCENARIO = "01-oral-stop-long-term"
RECORD_KEYS = ("patient", "medications", "observations", "conditions")


@dataclass(frozen=True)
class ScenarioPatient:
    scenario: str
    patient_id: str
    expected_kinds: tuple[str, ...]  # patient-view cards by kind, as the scenario expects
    resources: tuple[dict, ...]


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


def all_patients(now: datetime) -> tuple[ScenarioPatient, list[ScenarioPatient]]:
    """The order-flow patient and the patient-view patients."""
    order = scenario_patient(ORDER_SCENARIO, now)
    return order, [scenario_patient(n, now) for n in PATIENT_VIEW_SCENARIOS]
