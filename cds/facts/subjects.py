"""One hook call's facts: a subject per route the patient is, or recently was, on.

For each route (oral, intrathecal) the subject gathers the timeline and its event, the
signs seen in the subject's window, the patient facts, the risk factors, the pump's
state, and flattens them into the fact dict the rules read (names: cds.facts.catalogue
plus the names rules/ defines). Signs count from when the interruption began: for an
oral draft stop with no earlier drop that is now (a fever already present did not come
from a stop not yet made); for a pump, pump failure leaves no order behind, so recent
signs always count. Signs of central depression always count over the recent window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from cds.facts.dose import PER_KG_MISSING_WEIGHT
from cds.facts.events import (
    DRAFT_HOOKS,
    RouteEvent,
    RouteHistory,
    judge_steps,
    omission,
    omission_during_stay,
    route_history,
)
from cds.facts.orders import Administration, Order, OrderReader
from cds.facts.patient import PatientFacts, PatientReader, RiskFactor
from cds.facts.pump import PumpReader, PumpState
from cds.facts.record import PatientRecord
from cds.facts.signs import CLOCK_SKEW, Sign, SignFinder
from cds.facts.stay import Stay, current_stay, find_stays
from cds.facts.timeline import Segment, Timeline, build_timeline
from cds.facts.timeutil import aware, days_between
from cds.knowledge import Knowledge

ROUTES = ("oral", "intrathecal")
DEPRESSION_SIGNS = ("depressed_consciousness", "respiratory_depression", "hypoxaemia")


@dataclass
class Subject:
    """A route, what happened to it, and every fact the rules and cards read about it."""

    route: str
    timeline: Timeline
    history: RouteHistory
    signs: list[Sign]  # in the subject's window
    severity: dict[str, str]  # sign key -> severe | early for this route
    risk_factors: list[RiskFactor]
    patient: PatientFacts
    pump: PumpState | None
    facts: dict[str, Any] = field(default_factory=dict)
    course: list[Order] = field(default_factory=list)
    course_start: datetime | None = None
    # Recent withdrawal or either-way signs older than the change being signed: not from
    # it, but withdrawal if doses were already missed, so the card names them.
    signs_before: list[Sign] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.route

    @property
    def event(self) -> RouteEvent:
        return self.history.event

    def signs_pointing(self, *directions: str, severity: str | None = None) -> list[Sign]:
        return [s for s in self.signs if s.points_to in directions
                and (severity is None or self.severity[s.key] == severity)]


@dataclass
class CallFacts:
    hook: str
    now: datetime
    patient_ref: str | None
    subjects: list[Subject]
    patient: PatientFacts
    orders: list[Order]

    def rule_facts(self) -> list[dict]:
        return [s.facts for s in self.subjects]


class FactExtractor:
    """Built once per knowledge; `extract` is pure and thread-safe."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.orders = OrderReader(knowledge)
        self.patient = PatientReader(knowledge)
        self.signs = SignFinder(knowledge)
        self.pumps = PumpReader(knowledge)
        # Every fact the rules may read, at its empty value; each subject starts from a copy.
        self._empty_facts = {f.name: _empty(f.kind, f.choices)
                             for f in knowledge.fact_fields.values()}

    def extract(self, hook: str, context: Mapping, record: PatientRecord, now: datetime
                ) -> CallFacts:
        now = aware(now)
        resources = [r for r in record.resources if isinstance(r, dict)]
        pump_on_record = self.pumps.on_record(resources)
        patient = self.patient.read(resources, now)
        weight = patient.measurements.get("body_weight")
        orders = self.orders.orders(record, pump_on_record, weight.value if weight else None)
        given = self.orders.administrations(record, orders, pump_on_record)
        signs = self.signs.find(resources, now) if orders or pump_on_record else []
        # A reading that shows nothing under a patient fact (a GCS under sedation) is no sign.
        signs = [s for s in signs if not (s.unless and patient.flags.get(s.unless))]
        encounter_id = context.get("encounterId") if isinstance(context, Mapping) else None
        encounter_ref = f"Encounter/{encounter_id}" if isinstance(encounter_id, str) else None
        stays = record.stays if record.stays is not None else find_stays(
            resources, now, self.knowledge.order_categories["inpatient"])
        stay = current_stay(stays, encounter_ref)
        subjects = []
        for route in ROUTES:
            route_orders = [o for o in orders if o.route == route]
            if not route_orders and not (route == "intrathecal" and pump_on_record):
                continue
            subject = self._subject(route, hook, orders, given, signs, patient, resources,
                                    encounter_ref, record, now, stay)
            if subject is not None:
                subjects.append(subject)
        return CallFacts(hook, now, _patient_ref(context, record), subjects, patient, orders)

    # -- one route

    def _subject(self, route: str, hook: str, orders: list[Order], given: list[Administration],
                 signs: list[Sign], patient: PatientFacts, resources: list[dict],
                 encounter_ref: str | None, record: PatientRecord, now: datetime,
                 stay: Stay | None = None) -> Subject | None:
        k = self.knowledge
        timeline = build_timeline(route, orders, given, now, k)
        pump = None
        if route == "intrathecal":
            running = timeline.running()
            dose = sum(s.level for s in running if s.level) or None
            conc = next((s.order.product.concentration_mg_per_ml for s in running
                         if s.order.product.concentration_mg_per_ml), None)
            pump = self.pumps.read(resources, given, dose, conc, now)
        # Risk first (it sets the taper policy the steps are judged by), from the dose held
        # before any change and the exposure so far.
        provisional = self._base_facts(route, hook, timeline, RouteEvent("none"), now, patient,
                                       encounter_ref)
        provisional_risk = self.patient.risk_factors(provisional, patient)
        risk = "high" if len(provisional_risk) >= k.risk_high_when_at_least else "standard"
        history = route_history(timeline, hook, k, risk)
        drafts = [o for o in orders if o.is_draft and o.route == route]
        # At discharge, a stay's order completed by the discharge is read as left off the
        # discharge orders (omission) when nothing carries it home, not as a chosen stop.
        completed_by_discharge = hook == "encounter-discharge" \
            and history.event.kind == "stop" and bool(history.event.orders) and all(
                o.status == "completed" and self.orders.is_inpatient(o, encounter_ref)
                for o in history.event.orders)
        if (history.event.kind == "none" or completed_by_discharge) \
                and hook in (*DRAFT_HOOKS, "encounter-discharge"):
            signed = _encounter_orders_signed(record, encounter_ref, self.orders)
            missed = omission(timeline, hook, encounter_ref, drafts, signed,
                              self.orders.is_inpatient, k,
                              discharge_list=bool(stay and stay.discharge_orders))
            if missed is not None:
                history.event = missed
        if history.event.kind == "none" and route == "oral" and hook not in (
                "encounter-start", "encounter-discharge"):
            missed = omission_during_stay(timeline, stay, self.orders.is_inpatient, k)
            if missed is not None:
                history.event = missed
        if history.event.kind == "stop" and history.event.stop_reason in ("none", "other") \
                and patient.serious_reaction:
            # The order carries no reason, but a serious reaction to baclofen was just
            # recorded: that is what the stop is for.
            history.event.stop_reason = "serious-reaction"
            history.event.stop_reason_text = patient.serious_reaction
        event = history.event
        facts = self._base_facts(route, hook, timeline, event, now, patient, encounter_ref)
        if not timeline.segments and not (pump and pump.known):
            return None
        risk_factors = self.patient.risk_factors(facts, patient)
        window = self._windows(route, hook, timeline, history, now)
        if route == "intrathecal" and pump is not None and pump.last_refill_at is not None \
                and pump.last_refill_at <= now:
            # A refill changes what the pump delivers: signs before it belong to the
            # episode it ended (a withdrawal it treated), not to the present one.
            after = pump.last_refill_at
            window = (max(window[0], after), max(window[1], after))
        if any(f.key == "spinal_cord_injury_t6_or_above" for f in provisional_risk):
            signs = _dysreflexia_pattern(k, signs)
        in_window = _present(k, [s for s in signs if s.at >= window[0] - CLOCK_SKEW
                                 or (s.points_to == "toxicity" and s.at >= window[1] - CLOCK_SKEW)])
        severity = {s.key: s.severity(k, route) for s in signs}
        subject = Subject(route, timeline, history, in_window, severity, risk_factors, patient,
                          pump)
        counted = set(in_window)  # not a list: thousands of readings (issue 26.2)
        subject.signs_before = [s for s in signs if s not in counted
                                and s.points_to in ("withdrawal", "either")
                                and s.at >= window[1] - CLOCK_SKEW]
        subject.course, subject.course_start = _course(timeline, event.at or now, k)
        facts.update(self._sign_facts(subject, signs, now))
        facts.update({f.key: True for f in risk_factors})
        facts["risk_high"] = len(risk_factors) >= k.risk_high_when_at_least
        facts["risk_factor_count"] = len(risk_factors)
        facts["taper_in_progress"] = history.taper_in_progress
        facts["ordered_in_encounter"] = any(
            self.orders.is_inpatient(s.order, encounter_ref) and s.active_at(now)
            for s in timeline.segments)
        facts["recent_increase"] = history.recent_increase_at is not None
        facts["recent_restart"] = history.recent_restart
        if pump is not None:
            facts.update(pump.flags(now, k.threshold("pump_refill_warning_days")))
            recent = now - timedelta(hours=k.threshold("pump_procedure_recent_hours"))
            facts["recent_pump_procedure"] = bool(pump.last_procedure_at
                                                  and pump.last_procedure_at >= recent)
            facts["on_baclofen"] = facts["on_baclofen"] or (pump.known and not timeline.segments)
        facts["hours_without_baclofen"] = _hours_without_baclofen(event, pump, now)
        broken = patient.found_at.get("catheter_problem") if route == "intrathecal" else None
        if broken is not None and broken <= now:
            # A catheter found broken delivers nothing: at least since it was found.
            facts["hours_without_baclofen"] = max(
                facts["hours_without_baclofen"], round((now - broken).total_seconds() / 3600, 1))
        facts["home_listing_active"] = any(
            o.route == route and not o.is_draft and o.status == "active"
            and not self.orders.is_inpatient(o, encounter_ref) for o in orders)
        facts["oral_bridge_running"] = route == "intrathecal" and any(
            o.route == "oral" and not o.is_draft and o.status == "active"
            and not o.dose.as_needed_only and (o.start is None or o.start <= now)
            for o in orders)
        self._derive(facts)
        if self._consciousness_from_withdrawal(subject, facts):
            # Reduced consciousness a day or more into an interruption, with nothing that makes
            # an overdose plausible, is the altered mental status the labels list among the
            # withdrawal signs: read it so, and let the withdrawal treatment stand.
            altered = k.signs["altered_mental_status"]
            subject.signs = [replace(s, key=altered.key, points_to=altered.points_to,
                                     label=altered.label, from_withdrawal=True)
                             if s.key == "depressed_consciousness" else s for s in subject.signs]
            signs = [replace(s, from_withdrawal=True) if s.key == "depressed_consciousness"
                     else s for s in signs]
            subject.severity[altered.key] = altered.severity_for(route)
            facts.update(self._sign_facts(subject, signs, now))
            facts["consciousness_from_withdrawal"] = True
            self._derive(facts)
        facts["id"] = route
        subject.facts = facts
        return subject

    @staticmethod
    def _drafts_of(timeline: Timeline) -> list[Order]:
        return list(dict.fromkeys(s.order for s in timeline.segments if s.order.is_draft))

    def _derive(self, facts: dict[str, Any]) -> None:
        for key, derived in self.knowledge.derived.items():
            facts[key] = derived.when.holds(facts)

    def _consciousness_from_withdrawal(self, subject: Subject, facts: Mapping[str, Any]) -> bool:
        toxicity = {s.key for s in subject.signs if s.points_to == "toxicity"}
        return (toxicity == {"depressed_consciousness"} and bool(facts.get("interrupted"))
                and not facts.get("toxicity_context")
                and facts["hours_without_baclofen"] >= self.knowledge.threshold(
                    "baclofen_cleared_hours"))

    def _base_facts(self, route: str, hook: str, timeline: Timeline, event: RouteEvent,
                    now: datetime, patient: PatientFacts, encounter_ref: str | None
                    ) -> dict[str, Any]:
        facts: dict[str, Any] = dict(self._empty_facts)
        facts.update(patient.flags)
        before = event.before if event.kind != "none" else timeline.level_at(now)
        if before is None and event.kind == "none":
            before = _last_known_level(timeline)
        running = timeline.running()
        facts.update({
            "route": route, "hook": hook, "event": event.kind, "draft": event.draft,
            "scheduled_end": event.scheduled_end,
            "event_time_known": event.at is not None,
            "event_time_estimated": event.estimated,
            "event_age_hours": round(max(0.0, (now - event.at).total_seconds() / 3600), 1)
            if event.at else 0.0,
            "on_baclofen": bool(running) or any(s.held for s in timeline.held_segments()),
            "dose_known": before is not None,
            "daily_dose": before or 0.0,
            "most_daily_dose": (before or 0.0) + _as_needed_allowance(running),
            "new_daily_dose": event.after or 0.0,
            "cut_percent": round(100 * (1 - (event.after or 0.0) / before))
            if before and event.kind != "none" else 0,
            "stop_reason": event.stop_reason,
            "recognition_weak": any(o.recognition.weak for o in event.orders)
            or (event.kind == "none" and any(s.order.recognition.weak for s in running)),
            "sporadic_as_needed": bool(timeline.prn and timeline.prn.regular is False),
            "ambiguity": timeline.ambiguity.kind if timeline.ambiguity else "none",
            "delivery_order_being_signed": any(
                s.order.is_draft and not s.order.is_stop_marker and s.level != 0
                for s in timeline.segments),
            "kidney_reading_unreadable": _kidney_reading_unreadable(patient),
            "draft_dose_unknown": any(
                o.is_draft and o.route == route and not o.is_stop_marker
                and o.status != "on-hold" and not o.dose.known for o in self._drafts_of(timeline)),
            "replaced_dose_unknown": any(s.unreadable_dose_replaced for s in timeline.segments),
            "dose_needs_weight": any(o.dose.unknown_reason == PER_KG_MISSING_WEIGHT
                                     for o in [*event.orders, *(s.order for s in running)]),
            "age_known": patient.age_years is not None,
            "age_years": patient.age_years or 0,
        })
        if event.kind == "hold" or (event.kind == "none" and timeline.held_segments()):
            facts["on_baclofen"] = False
        course, start = _course(timeline, event.at or now, self.knowledge)
        if start is not None:
            facts["exposure_days"] = round(max(0.0, days_between(start, event.at or now)), 1)
            # A course that begins with an open-ended hospital order, or with a taper
            # schedule (a dose can only step down from earlier use), began earlier: the
            # order's date is a lower bound, never read as a short course.
            facts["exposure_known"] = not (
                (self.orders.is_inpatient(course[0], encounter_ref)
                 and course[0].planned_end is None) or course[0].dose.is_taper_schedule)
        return facts

    def _windows(self, route: str, hook: str, timeline: Timeline, history: RouteHistory,
                 now: datetime) -> tuple[datetime, datetime]:
        """(from when withdrawal and either signs count, from when depression signs count)."""
        recent = now - timedelta(hours=self.knowledge.threshold("recent_sign_hours"))
        event = history.event
        if route == "oral" and event.kind == "none" and history.taper_in_progress:
            # Signs count from the taper's first step: one being signed now did not
            # cause a fever of yesterday.
            first = _taper_start(history)
            return (max(first, recent) if first else recent), recent
        if route == "intrathecal" or event.kind == "none" or event.at is None:
            start = min(event.at, recent) if event.at else recent
            return start, recent
        if event.draft:
            # The interruption starts with the draft, unless the dose already dropped.
            earlier = [j.step.at for j in history.judged
                       if j.verdict != "policy" and not j.step.draft and j.step.at is not None
                       and j.step.at >= now - timedelta(days=self.knowledge.threshold(
                           "lookback_days"))]
            return (min(earlier) if earlier else now), recent
        return event.at, recent

    def _sign_facts(self, subject: Subject, all_signs: list[Sign], now: datetime
                    ) -> dict[str, Any]:
        k = self.knowledge
        facts: dict[str, Any] = {key: False for key in k.signs}
        for sign in subject.signs:
            facts[sign.key] = True
        severity = subject.severity
        facts["withdrawal_severe"] = len({s.key for s in subject.signs_pointing(
            "withdrawal") if severity[s.key] == "severe"})
        facts["withdrawal_early"] = len({s.key for s in subject.signs_pointing(
            "withdrawal") if severity[s.key] == "early"} | {
            s.key for s in subject.signs_pointing("either") if severity[s.key] == "early"})
        facts["either_severe"] = len({s.key for s in subject.signs_pointing(
            "either") if severity[s.key] == "severe"})
        facts["toxicity_signs"] = len({s.key for s in subject.signs_pointing("toxicity")})
        facts["any_signs"] = len({s.key for s in subject.signs})
        facts["severe_sign_count"] = facts["withdrawal_severe"] + facts["either_severe"]
        facts["signs_before_change"] = len({s.key for s in subject.signs_before})
        lookback = now - timedelta(days=k.threshold("lookback_days"))
        facts["consciousness_or_breathing_depressed"] = any(
            (s.key in DEPRESSION_SIGNS or (s.key == "altered_mental_status"
                                           and s.source_ref.startswith("Observation/")))
            and not s.from_withdrawal
            for s in all_signs if s.at >= lookback)
        return facts


def _dysreflexia_pattern(knowledge: Knowledge, signs: list[Sign]) -> list[Sign]:
    """In a spinal cord injury at T6 or above, a slow pulse within two hours of a raised
    blood pressure is the reflex of a hypertensive crisis above the lesion (autonomic
    dysreflexia, which advanced withdrawal resembles), not a sign of central depression."""
    raised = [s.at for s in signs if s.key == "raised_blood_pressure"]
    pattern = knowledge.signs["autonomic_dysreflexia_pattern"]
    return [replace(s, key=pattern.key, label=pattern.label, points_to=pattern.points_to)
            if s.key == "bradycardia" and any(abs(s.at - at) <= timedelta(hours=2)
                                               for at in raised) else s
            for s in signs]


def _kidney_reading_unreadable(patient: PatientFacts) -> bool:
    kidney = ("egfr", "serum_creatinine")
    return any(u.measurement in kidney for u in patient.unreadable) and not any(
        key in patient.measurements for key in kidney)


def _hours_without_baclofen(event: RouteEvent, pump: PumpState | None, now: datetime
                            ) -> float:
    """How long the route has delivered nothing: since an oral stop, hold or omission of
    known time, or since a pump's reservoir ran empty by the estimate (0 otherwise)."""
    if event.kind in ("stop", "hold", "omission") and event.at is not None and not event.draft:
        return round(max(0.0, (now - event.at).total_seconds() / 3600), 1)
    if pump is not None and pump.empty_at is not None and pump.empty_at <= now:
        return round((now - pump.empty_at).total_seconds() / 3600, 1)
    return 0.0


def _present(knowledge: Knowledge, signs: list[Sign]) -> list[Sign]:
    """Signs still present: one that a later opposite reading of the same measure has
    resolved (signs.yaml resolved_by: a fever, then a low temperature) has passed."""
    # The latest reading of each sign, not a pass over every sign per sign (issue 26.2).
    latest: dict[str, datetime] = {}
    for sign in signs:
        if sign.key not in latest or sign.at > latest[sign.key]:
            latest[sign.key] = sign.at
    return [s for s in signs if not any(
        key in latest and latest[key] > s.at for key in knowledge.signs[s.key].resolved_by)]


def _taper_start(history: RouteHistory) -> datetime | None:
    """The first step of the taper under way: the start of its run of policy steps."""
    first = None
    for judged in history.judged:
        first = (first or judged.step.at) if judged.verdict == "policy" else None
    return first


def _empty(kind: str, choices: tuple[str, ...]) -> Any:
    return {"flag": False, "count": 0, "number": 0.0}.get(kind, choices[0] if choices else "")


def _last_known_level(timeline: Timeline) -> float | None:
    levels = [s.level for s in timeline.segments if s.level]
    return levels[-1] if levels else None


def _course(timeline: Timeline, until: datetime, knowledge: Knowledge
            ) -> tuple[list[Order], datetime | None]:
    """The orders continuous with the latest one before `until` (gaps up to the course gap)."""
    gap = timedelta(days=knowledge.threshold("max_course_gap_days"))
    # The course is what the patient has been taking: the orders being signed are not.
    taken = [s for s in timeline.segments
             if not s.order.is_draft and s.order.status != "cancelled"]
    dated = sorted((s for s in taken if s.start is not None and s.start <= until),
                   key=lambda s: s.start)
    undated = [s for s in taken if s.start is None]
    if not dated:
        return [s.order for s in taken] or [s.order for s in timeline.segments], None
    chain = [dated[-1]]
    for segment in reversed(dated[:-1]):
        end = segment.end or chain[-1].start
        if end >= chain[-1].start - gap:
            chain.append(segment)
        else:
            break
    chain.reverse()
    if any(s.end is None or s.end >= chain[0].start - gap for s in undated):
        # An order of unknown date ran alongside or before: the course began earlier.
        return [*(s.order for s in undated), *(s.order for s in chain)], None
    return [s.order for s in chain], chain[0].start


def _encounter_orders_signed(record: PatientRecord, encounter_ref: str | None,
                             reader: OrderReader) -> bool:
    """Are medication orders for this encounter among the drafts (admission orders)?"""
    if encounter_ref is None:
        return False
    inpatient = set(reader.knowledge.order_categories["inpatient"])
    for draft in record.draft_orders:
        if not isinstance(draft, dict) or draft.get("resourceType") != "MedicationRequest":
            continue
        encounter = draft.get("encounter")
        if isinstance(encounter, dict) and encounter.get("reference") == encounter_ref:
            return True
        categories = draft.get("category")
        for category in categories if isinstance(categories, list) else []:
            for coding in (category or {}).get("coding") or [] if isinstance(category, dict) \
                    else []:
                if isinstance(coding, dict) and coding.get("code") in inpatient:
                    return True
    return False


def _patient_ref(context: Mapping, record: PatientRecord) -> str | None:
    pid = context.get("patientId") if isinstance(context, Mapping) else None
    if isinstance(pid, str):
        return f"Patient/{pid}"
    patient = next((r for r in record.resources if isinstance(r, dict)
                    and r.get("resourceType") == "Patient"), None)
    return f"Patient/{patient['id']}" if patient and isinstance(patient.get("id"), str) else None


__all__ = ["CallFacts", "FactExtractor", "Subject", "judge_steps"]


def _as_needed_allowance(running: Sequence[Segment]) -> float:
    """The largest as-needed allowance among the running orders (mg/day): the largest, not
    the sum, so a home and an inpatient copy of one as-needed order are not counted twice."""
    return max((s.order.dose.as_needed_max or 0.0 for s in running
                if s.order.dose.as_needed and not s.order.is_stop_marker), default=0.0)
