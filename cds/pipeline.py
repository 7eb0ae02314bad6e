"""One hook call, end to end, without any web framework:
validate envelope -> gather data -> check resources -> clinical engine -> response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cds import envelope
from cds.caller import LOCAL_TRIAL_CLIENT, CdsClient
from cds.cards.extension import EXTENSION_KEY, card_kind, suggestion_kind
from cds.config import Settings
from cds.errors import ClientError
from cds.facts.record import PatientRecord
from cds.facts.relevance import Relevance, dosed_per_kg
from cds.facts.stay import find_stays
from cds.gather import gather
from cds.issued_cards import IssuedCardRecorder
from cds.knowledge import Knowledge
from cds.resources import CheckedResources, check_resources, flatten
from cds.services import ServiceDefinition, ServiceRegistry
from cds.storage import IssuedCard, Store

# Checked first: without a possible baclofen order (or a pump), nothing else can produce a card.
ORDER_TYPES = frozenset({"MedicationRequest", "Medication", "Patient", "Encounter",
                         "MedicationAdministration", "Device", "Procedure"})


class Engine(Protocol):
    def assess(self, hook: str, context: dict, data: PatientRecord, now: datetime,
               handout: Any = None) -> Any: ...


@dataclass
class HookOutcome:
    response: dict
    service: ServiceDefinition
    card_kinds: list[str] = field(default_factory=list)
    models_built: Counter[str] = field(default_factory=Counter)


class HookPipeline:
    def __init__(
        self,
        settings: Settings,
        registry: ServiceRegistry,
        knowledge: Knowledge,
        engine: Engine,
        store: Store | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        handouts: Any = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.knowledge = knowledge
        self.engine = engine
        self.store = store
        self.recorder = IssuedCardRecorder(store) if store is not None else None
        self.clock = clock
        self.relevance = Relevance(knowledge)
        self.handouts = handouts  # cds.handout.link.HandoutLinks: patient handout links

    def resolve_service(self, service_id: str, hook: object) -> ServiceDefinition:
        hooks = self.registry.hooks_for(service_id)
        if hooks is None:
            raise ClientError(404, f"There is no CDS service with id '{service_id}'.")
        service = hooks.get(hook) if isinstance(hook, str) else None
        if service is None:
            expected = " or ".join(sorted(hooks))
            raise ClientError(
                400,
                f"Service '{service_id}' is invoked by the {expected} hook, not by the hook "
                "named in the request.",
                location="$.hook",
            )
        return service

    def call(self, service_id: str, request: Any, client: CdsClient = LOCAL_TRIAL_CLIENT,
             handout_base_url: str | None = None,
             between_steps: Callable[[], None] = lambda: None,
             before_network: Callable[[], None] = lambda: None) -> HookOutcome:
        """`handout_base_url`: where this call's handout links point (none without it).
        `between_steps` runs between the CPU-bound steps: the web layer hands the
        worker to a call waiting for its turn there (cds/web/admission.py);
        `before_network` before the call waits on a FHIR server (the turn is given back)."""
        if self.registry.hooks_for(service_id) is None:
            raise ClientError(404, f"There is no CDS service with id '{service_id}'.")
        envelope.validate(request, "request")
        service = self.resolve_service(service_id, request.get("hook"))
        gathered = gather(request, service, self.settings, client, before_network)

        context = request["context"]
        draft_candidates = flatten(context.get("draftOrders"))
        total = len(gathered.resources) + len(draft_candidates)
        if total > self.settings.max_resources:
            raise ClientError(
                413,
                f"The request carries {total} FHIR resources; this service accepts at most "
                f"{self.settings.max_resources}.",
            )
        now = self.clock()
        between_steps()
        checked, drafts = check_record(self.relevance, gathered.resources, draft_candidates, now,
                                       self.settings.max_read_resources)
        stays = find_stays(gathered.resources, now, self.knowledge.order_categories["inpatient"])
        between_steps()
        assessment = self.engine.assess(
            service.hook,
            context,
            PatientRecord(resources=checked.resources, draft_orders=drafts.resources,
                          stays=stays),
            now,
            handout=self.handouts.for_base_url(handout_base_url)
            if self.handouts is not None and handout_base_url else None,
        )
        cards = list(assessment.cards)
        response: dict[str, Any] = {"cards": cards}
        extension = _response_extension(gathered, checked, drafts)
        extension.update(_reading_notices(assessment))
        unresolved = _unresolved_medication_references(checked.resources + drafts.resources)
        if unresolved:
            # Baclofen named only through a Medication we were not given may be missed.
            extension["unresolvedMedicationReferences"] = unresolved
        if extension:
            response["extension"] = {EXTENSION_KEY: extension}
        self._record(service, cards, client)
        return HookOutcome(
            response=response,
            service=service,
            card_kinds=[card_kind(c) for c in cards],
            models_built=checked.models_built + drafts.models_built,
        )

    def _record(self, service: ServiceDefinition, cards: list[dict], client: CdsClient
                ) -> None:
        if self.recorder is None or not cards:
            return
        self.recorder.record(
            IssuedCard(
                card_uuid=str(c.get("uuid")),
                service_id=service.id,
                hook=service.hook,
                kind=card_kind(c),
                indicator=str(c.get("indicator")),
                suggestions=tuple(
                    (str(s.get("uuid")), str(s.get("label")), suggestion_kind(s))
                    for s in c.get("suggestions") or []
                ),
                # Feedback about this card is accepted from this client only.
                client_iss=client.iss,
                client_tenant=client.tenant,
                override_reasons=tuple(
                    (str(r.get("system")), str(r.get("code")), str(r.get("display")))
                    for r in c.get("overrideReasons") or []
                ),
            )
            for c in cards
            if c.get("uuid")
        )


def _reading_notices(assessment: Any) -> dict[str, Any]:
    """Values the rules would use but could not read: a reading's unit, a dose being
    signed. Named so an integrator can fix the source; what the reading is, never its
    value or the patient's data (the card shows the value to the clinician)."""
    facts = getattr(assessment, "facts", None)
    if facts is None:
        return {}
    notices: dict[str, Any] = {}
    unreadable = getattr(facts.patient, "unreadable", [])
    if unreadable:
        notices["unreadableValues"] = [u.as_json() for u in unreadable]
    doses = [{"resourceType": "MedicationRequest", "order": "being-signed",
              "reason": o.dose.unknown_reason}
             for o in facts.orders if o.is_draft and not o.is_stop_marker
             and not o.dose.known and o.dose.unknown_reason]
    # A running order a readable draft replaces, whose own dose cannot be read: the change
    # cannot be judged either (issue 23 item 4's other side).
    replaced = dict.fromkeys(s.order for subject in facts.subjects
                             for s in subject.timeline.segments if s.unreadable_dose_replaced)
    doses += [{"resourceType": "MedicationRequest", "order": "current",
               "reason": o.dose.unknown_reason or "dose unknown"} for o in replaced]
    if doses:
        notices["unreadableDoses"] = doses
    return notices


def _unresolved_medication_references(resources: list[dict]) -> int:
    """MedicationRequests whose medicationReference points at no Medication we hold."""
    held = {f"Medication/{r.get('id')}" for r in resources if r.get("resourceType") == "Medication"}
    # A reference names a held Medication in full or ends with "/Medication/<id>". Held
    # references are indexed by their last part, so each reference is compared with the
    # few that could match, not with every Medication (issue 26.2).
    by_last_part: dict[str, list[str]] = {}
    for held_ref in held:
        by_last_part.setdefault(held_ref.rsplit("/", 1)[-1], []).append(held_ref)
    count = 0
    for resource in resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        medication = resource.get("medicationReference")
        reference = medication.get("reference") if isinstance(medication, dict) else None
        if not isinstance(reference, str):
            continue
        if reference.startswith("#"):
            contained = {f"#{c.get('id')}" for c in resource.get("contained") or []
                         if isinstance(c, dict)}
            count += reference not in contained
        else:
            candidates = by_last_part.get(reference.rsplit("/", 1)[-1], ())
            count += not any(reference == h or reference.endswith("/" + h) for h in candidates)
    return count


def _response_extension(gathered, checked: CheckedResources, drafts: CheckedResources) -> dict:
    extension: dict[str, Any] = {}
    if gathered.unavailable:
        extension["unavailableData"] = [
            {"prefetchKey": key, "reason": reason}
            for key, reason in sorted(gathered.unavailable.items())
        ]
    if gathered.truncated:
        extension["truncatedData"] = sorted(gathered.truncated)
    if gathered.fetched:
        extension["fetchedFromFhirServer"] = list(gathered.fetched)
    skipped = [s.as_json() for s in checked.skipped + drafts.skipped]
    if skipped:
        extension["skippedResources"] = skipped
    adjusted = [a.as_json() for a in checked.adjusted + drafts.adjusted]
    if adjusted:
        extension["adjustedResources"] = adjusted
    return extension


def check_record(relevance: Relevance, resources: list[dict], draft_candidates: list[dict],
                 now: datetime, max_read: int | None = None
                 ) -> tuple[CheckedResources, CheckedResources]:
    """Model what the facts can use. Observations and Conditions only matter for a
    patient with a baclofen order or a pump, so the common no-baclofen call skips them.

    `max_read`: the most resources the facts may read in detail (each one is modelled,
    about a millisecond, and feeds the timeline and the signs); past it, 413."""
    orders_first: list[dict] = []
    rest: list[dict] = []
    for resource in resources:
        kind = resource.get("resourceType")
        (orders_first if isinstance(kind, str) and kind in ORDER_TYPES else rest).append(resource)
    selected = relevance.select(orders_first, now)
    _within_read_limit(len(selected) + len(draft_candidates), max_read)
    checked = check_resources(selected)
    drafts = check_resources(draft_candidates, lenient_missing=True)
    if any(r.get("resourceType") in ("MedicationRequest", "MedicationAdministration",
                                     "Device", "Procedure")
           for r in checked.resources) or any(
            r.get("resourceType") == "MedicationRequest"
            and relevance.could_be_baclofen_request(r) for r in drafts.resources):
        weight = dosed_per_kg([r for r in [*checked.resources, *drafts.resources]
                               if r.get("resourceType") == "MedicationRequest"])
        more = relevance.select(rest, now, weight_needed=weight)
        _within_read_limit(len(selected) + len(draft_candidates) + len(more), max_read)
        check_resources(more, into=checked)
    return checked, drafts


def _within_read_limit(count: int, max_read: int | None) -> None:
    if max_read is not None and count > max_read:
        raise ClientError(
            413,
            f"The record holds {count} resources this service reads in detail (baclofen "
            "orders and administrations, pump records, conditions and readings that show a "
            f"sign, and draft orders); it reads at most {max_read} in one call. Send a "
            "shorter history (the prefetch templates bound each search).",
        )
