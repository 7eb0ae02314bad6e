"""The CDS services this server offers: discovery metadata and their prefetch templates.

order-select and order-sign have their own ids by default (`baclofen-order-select`,
`baclofen-order-sign`): the CDS Hooks Sandbox and other clients key services by id, so
entries sharing one id overwrite each other there and order-select is never called.
CDS Hooks 2.0 also lets a server list one id for both hooks so that a client replaces the
order-select guidance with the order-sign guidance for the same orders ("update stale
guidance"); a site whose EHR supports that turns it on with CDS_SHARED_ORDER_SERVICE_ID.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds.knowledge import Knowledge

SHARED_ORDER_SERVICE_ID = "baclofen-order"
ORDER_SERVICE_IDS = {"order-select": "baclofen-order-select", "order-sign": "baclofen-order-sign"}


@dataclass(frozen=True)
class Prefetch:
    key: str
    template: str
    # Required data: without it no safe decision is possible, so the service answers 412.
    required: bool = False


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: tuple[Prefetch, ...] = field(default=())
    usage_requirements: str | None = None

    def discovery_entry(self) -> dict:
        entry = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": {p.key: p.template for p in self.prefetch},
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


def _code_param(tokens: Iterable[str]) -> str:
    tokens = sorted(set(tokens))
    return ("&code=" + ",".join(tokens)) if tokens else ""


def observation_code_tokens(knowledge: Knowledge) -> list[str]:
    """"system|code" of every Observation code the facts read: sign readings (and the
    panels their components come in), patient-fact readings, measurements (body weight,
    creatinine, eGFR), and site pump codes."""
    sets = [r.code_set for s in knowledge.signs.values() for r in s.readings]
    sets += [r.fetch_with for s in knowledge.signs.values() for r in s.readings if r.fetch_with]
    sets += [f.code_set for fact in knowledge.patient_facts.values() for f in fact.finders
             if f.kind == "observation" and f.code_set is not None]
    sets += [r.code_set for m in knowledge.measurements.values() for r in m.readings]
    sets += [knowledge.code_sets[name] for name in (
        "pump_reservoir_volume", "pump_alarm", "pump_battery", "pump_daily_dose")]
    return sorted({token for code_set in sets for token in code_set.tokens()})


def build_services(observation_codes: Iterable[str], *, shared_order_id: bool = False
                   ) -> list[ServiceDefinition]:
    """Service list with prefetch templates derived from the codes the rules read.

    `shared_order_id`: one id for order-select and order-sign (stale-guidance updates).
    """

    def order_id(hook: str) -> str:
        return SHARED_ORDER_SERVICE_ID if shared_order_id else ORDER_SERVICE_IDS[hook]

    patient = Prefetch("patient", "Patient/{{context.patientId}}")
    # Any status: stopped and completed requests are the evidence of a discontinuation.
    medications = Prefetch(
        "medications",
        "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
        required=True,
    )
    observations = Prefetch(
        "observations",
        "Observation?patient={{context.patientId}}"
        + _code_param(observation_codes)
        + "&_sort=-date&_count=500",
    )
    # Unfiltered: risk conditions include ICD-10-CM code families (e.g. G35*) that a
    # FHIR token search cannot express, and a patient's Condition list is short.
    conditions = Prefetch("conditions", "Condition?patient={{context.patientId}}")
    # Allergies to baclofen justify a rapid stop; pumps, their procedures and the doses
    # given (refills, MAR) tell interrupted delivery and continuing courses apart.
    allergies = Prefetch("allergies", "AllergyIntolerance?patient={{context.patientId}}")
    devices = Prefetch("devices", "Device?patient={{context.patientId}}")
    procedures = Prefetch("procedures", "Procedure?patient={{context.patientId}}"
                          "&_sort=-date&_count=100")
    administrations = Prefetch("administrations",
                               "MedicationAdministration?patient={{context.patientId}}"
                               "&_sort=-effective-time&_count=200")
    encounter = Prefetch("encounter", "Encounter/{{context.encounterId}}")
    common = (patient, medications, observations, conditions, allergies, devices, procedures,
              administrations)
    usage = (
        "Send the prefetch keys, or a fhirServer with fhirAuthorization so the service can "
        "fetch them; client JWT authentication unless the operator switched it off."
    )
    order_description = (
        "Warns when a draft order stops, cancels or sharply cuts baclofen without a taper, "
        "offers a supervised taper as a one-click suggestion, and calls for emergency "
        "evaluation when withdrawal signs are present."
    )
    return [
        ServiceDefinition(
            order_id("order-select"), "order-select", "Baclofen withdrawal risk (order selection)",
            order_description, common, usage,
        ),
        ServiceDefinition(
            order_id("order-sign"), "order-sign", "Baclofen withdrawal risk (order signing)",
            order_description, common, usage,
        ),
        ServiceDefinition(
            "baclofen-patient-view", "patient-view", "Baclofen withdrawal watch",
            "Looks for recent abrupt baclofen discontinuation and for signs of withdrawal, "
            "including intrathecal pump failure, when a chart is opened.",
            common, usage,
        ),
        ServiceDefinition(
            "baclofen-encounter-start", "encounter-start", "Baclofen on admission",
            "At admission, flags home baclofen that is missing from the encounter's orders "
            "and any signs of withdrawal already under way.",
            (*common, encounter), usage,
        ),
        ServiceDefinition(
            "baclofen-encounter-discharge", "encounter-discharge", "Baclofen at discharge",
            "At discharge, flags baclofen the patient was taking that is missing from the "
            "discharge orders.",
            (*common, encounter), usage,
        ),
    ]


class ServiceRegistry:
    """Lookup by id and hook; several entries may share one id (different hooks)."""

    def __init__(self, services: list[ServiceDefinition]) -> None:
        self.services = services
        self._by_id: dict[str, dict[str, ServiceDefinition]] = {}
        for service in services:
            self._by_id.setdefault(service.id, {})[service.hook] = service

    def ids(self) -> set[str]:
        return set(self._by_id)

    def hooks_for(self, service_id: str) -> dict[str, ServiceDefinition] | None:
        return self._by_id.get(service_id)

    def discovery(self) -> dict:
        return {"services": [s.discovery_entry() for s in self.services]}
