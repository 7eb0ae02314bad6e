"""The checks against the real service, as a clinician would meet them in the Sandbox.

One run per authentication mode: discovery, patient-view, then in Rx View (order-select)
and Rx Sign (order-sign) drafted baclofen cuts and stops beside the current order, and
for each way of accepting the taper card (the taper, or keeping the current dose) the
answer to the next order-sign; then the feedback report.

What the Sandbox does with an accepted suggestion is predicted by
cds.suggestion_clients (client "sandbox") and checked against what the real Sandbox then
sends, so the contract tests and the preview page, which use that model, stay honest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox_e2e import capture
from sandbox_e2e.browser import Exchange, Traffic, loopback_context, watch
from sandbox_e2e.patients import ScenarioPatient
from sandbox_e2e.processes import REPO, Service
from sandbox_e2e.results import Results
from sandbox_e2e.sandbox_ui import SandboxPage
from tests.support.outbound import OutboundTrap

EXTENSION = "org.baclofen-cds"
ALARMING = ("warning", "critical")
TAPER = "replace-with-taper"  # the suggestions' stable names (extension.suggestion)
KEEP = "keep-current-dose"


@dataclass(frozen=True)
class Draft:
    """What a clinician drafts in the Sandbox: a product, a number of pills (1-5) a time,
    times a day, and for a stop the End Date today (the only stop the Sandbox can draft)."""

    name: str
    search: str
    product: str
    pills: int
    times: int
    ends_today: bool = False


CUT_10 = Draft("cut to 10 mg tablets", "baclofen 10", "Baclofen 10 MG Oral Tablet", 1, 1)
CUT_20 = Draft("cut to 20 mg tablets", "baclofen 20", "Baclofen 20 MG Oral Tablet", 1, 1)
STOP = Draft("stop", "baclofen 20", "Baclofen 20 MG Oral Tablet", 1, 3, ends_today=True)
SERIES = "sandbox-accept"  # the screenshot series Sign -> card -> Accept -> Sign


@dataclass
class Run:
    mode: str
    ui: SandboxPage
    traffic: Traffic
    service: Service
    trap: OutboundTrap
    results: Results
    order_patients: dict[str, ScenarioPatient]
    view_patients: list[ScenarioPatient]
    capture_dir: Path | None
    fhir_url: str
    reason_codes: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return self.mode.replace(" ", "-")

    @property
    def discovery_url(self) -> str:
        return self.service.base_url + "/cds-services"

    def keep(self, exchange: Exchange, name: str, what: str) -> None:
        if self.capture_dir is not None:
            capture.save(exchange, name, self.capture_dir, self.service.base_url,
                         self.fhir_url, what)

    def step(self, name: str, check: Any, *args: Any) -> Any:
        try:
            return check(self, name, *args)
        except Exception as error:  # one broken step must not hide the others
            self.results.error(self.mode, name, error)
            self.ui.screenshot(f"error-{self.mode.replace(' ', '-')}-{len(self.results.steps)}")
            return None


def kinds(response: Any) -> list[str]:
    cards = response.get("cards", []) if isinstance(response, dict) else []
    return [((c.get("extension") or {}).get(EXTENSION) or {}).get("kind", "?") for c in cards]


def draft_of(exchange: Exchange) -> dict:
    entries = exchange.body["context"]["draftOrders"].get("entry") or [{}]
    return entries[0].get("resource") or {}


def draft_text(draft: dict) -> str:
    if not draft.get("dosageInstruction"):
        return "no medication and no dose (a sparse draft)"
    medication = (draft.get("medicationCodeableConcept") or {}).get("text", "no medication")
    dosage = (draft.get("dosageInstruction") or [{}])[0]
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    dose = ((dosage.get("doseAndRate") or [{}])[0].get("doseQuantity") or {})
    end = (repeat.get("boundsPeriod") or {}).get("end")
    text = f"{medication}, {dose.get('value')} {dose.get('code')} x{repeat.get('frequency')}/day"
    return text + (f", ends {end}" if end else "")


def check_discovery(run: Run, name: str) -> None:
    discovery = run.ui.open(run.order_patients["tablets"].patient_id, [run.discovery_url])
    ids = [s["id"] for s in discovery.response["services"]]
    listed = run.ui.listed_service_urls()
    run.ui.screenshot(f"sandbox-services-{run.mode.replace(' ', '-')}")
    run.ui.close_dialog()
    expected = {f"{run.discovery_url}/{i}" for i in ids}
    run.keep(discovery, "discovery", "GET discovery when the Sandbox loads")
    token = capture.decoded_token(discovery.authorization) or {}
    header = token.get("header", {})
    run.results.add(
        run.mode, name,
        discovery.status == 200 and set(listed) == expected and len(ids) == 5,
        f"GET /cds-services answered {discovery.status}; the Sandbox's Configure CDS Services "
        f"lists {len(listed)} of {len(ids)}: {', '.join(ids)} (token {header.get('alg')}, "
        f"jku {header.get('jku')}); it can call only patient-view, order-select and "
        "order-sign, so the encounter services are listed but never called")


def check_patient_view(run: Run, name: str, patient: ScenarioPatient) -> None:
    mark = run.traffic.mark()
    run.ui.open(patient.patient_id, [run.discovery_url])
    call = run.traffic.wait_for(run.ui.page, mark, lambda e: e.hook == "patient-view" and
                                e.body["context"]["patientId"] == patient.patient_id)
    cards = call.response.get("cards", [])
    for card in cards:
        run.ui.card_with(card["summary"]).wait_for()
    shown = run.ui.cards().count()
    got = kinds(call.response)
    if patient.scenario.startswith("13-"):
        run.ui.screenshot(f"sandbox-patient-view-{run.mode.replace(' ', '-')}")
        run.keep(call, "patient-view", "patient-view on opening the chart (prefetch resolved "
                 "by the Sandbox from the FHIR server)")
    run.results.add(
        run.mode, name,
        call.status == 200 and sorted(got) == sorted(patient.expected_kinds) and
        shown == len(cards),
        f"{patient.scenario}: answered {call.status}, cards {got or 'none'} (expected "
        f"{list(patient.expected_kinds) or 'none'}), {shown} shown by the Sandbox")
    if "supervised-taper" in got:
        run.step(f"{name}: dismiss with a reason", check_dismiss, call)


def check_dismiss(run: Run, name: str, call: Exchange) -> None:
    card = next(c for c in call.response["cards"]
                if c["extension"][EXTENSION]["kind"] == "supervised-taper")
    reason = card["overrideReasons"][0]
    feedback = run.ui.dismiss_with_reason(card["summary"], reason["display"])
    sent = feedback.body["feedback"][0]
    run.reason_codes.append(reason["code"])
    run.keep(feedback, "feedback-overridden", "feedback after Dismiss with a reason")
    run.ui.card_with(card["summary"]).wait_for(state="detached")
    run.results.add(
        run.mode, name,
        feedback.status == 200 and sent["outcome"] == "overridden" and
        sent.get("overrideReason", {}).get("reason", {}).get("code") == reason["code"],
        f"feedback {feedback.status}: outcome {sent['outcome']}, reason sent as "
        f"{sent.get('overrideReason')} (the Sandbox sends code and system, no display)")


def settled_order_select(run: Run, mark: int, quiet: float = 1.5) -> Exchange:
    """The last order-select call once the Sandbox stops calling (it calls on every
    change of the draft)."""
    run.traffic.wait_for(run.ui.page, mark, lambda e: e.hook == "order-select")
    seen = len(run.traffic.since(mark))
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        run.ui.page.wait_for_timeout(250)
        if len(run.traffic.since(mark)) != seen:
            seen = len(run.traffic.since(mark))
            deadline = time.monotonic() + quiet
    return [e for e in run.traffic.since(mark) if e.hook == "order-select"][-1]


def alarms(response: Any) -> list[str]:
    """The cards that still warn: any warning or critical card, and any taper card."""
    cards = response.get("cards", []) if isinstance(response, dict) else []
    return [f"{((c.get('extension') or {}).get(EXTENSION) or {}).get('kind', '?')} "
            f"({c.get('indicator')}): {c.get('summary')}" for c in cards
            if c.get("indicator") in ALARMING or
            ((c.get("extension") or {}).get(EXTENSION) or {}).get("kind") == "supervised-taper"]


def draft_order(run: Run, patient: ScenarioPatient, screen: str, draft: Draft,
                shot: str | None = None) -> Exchange:
    """Open the patient's chart, draft the order in `screen`, and return the call that
    judges it: the settled order-select (Rx View) or the order-sign of Sign Order."""
    ui = run.ui
    ui.open(patient.patient_id, [run.discovery_url])
    mark = run.traffic.mark()
    ui.tab(screen)
    if screen == "Rx View" and draft is CUT_20 and patient is run.order_patients["tablets"]:
        sparse = settled_order_select(run, mark)
        run.keep(sparse, "order-select-no-medication",
                 "order-select when Rx View opens, before a medication is chosen")
        mark = run.traffic.mark()
    ui.choose_medication(draft.search, draft.product)
    ui.set_dose(draft.pills, draft.times)
    if draft.ends_today:
        ui.set_end_date_today()
    if screen == "Rx View":
        return settled_order_select(run, mark)
    if shot:
        ui.view_screenshot(f"{shot}-1-drafted-{run.slug}")
    return ui.sign()


def check_order(run: Run, name: str, what: str, screen: str, draft: Draft,
                then: tuple[str, ...] = ()) -> None:
    """A drafted cut or stop gets the taper card; then each of `then` ("dismiss", or a
    suggestion's stable name) is tried on a fresh draft of the same order."""
    patient = run.order_patients[what]
    shot = SERIES if (what, screen, draft, run.mode) == ("tablets", "Rx Sign", CUT_10,
                                                         "auth on") else None
    call = draft_order(run, patient, screen, draft, shot)
    hook = "order-select" if screen == "Rx View" else "order-sign"
    if what == "tablets" and draft in (CUT_20, STOP):
        change = "cut" if draft is CUT_20 else "stop"
        run.keep(call, f"{hook}-{change}", f"{hook} for a drafted baclofen {change} ({screen})")
    tapers = [c for c in call.response.get("cards", [])
              if c["extension"][EXTENSION]["kind"] == "supervised-taper"]
    if tapers:
        run.ui.card_with(tapers[0]["summary"]).wait_for()
        if what == "tablets" and draft in (CUT_20, STOP):
            run.ui.view_screenshot(f"sandbox-{hook}-{'cut' if draft is CUT_20 else 'stop'}-"
                                   f"{run.slug}")
        if shot:
            run.ui.view_screenshot(f"{shot}-2-card-{run.slug}")
    extension = (call.response.get("extension") or {}).get(EXTENSION, {})
    shown = (f"cards {kinds(call.response)}" if call.response.get("cards")
             else f"no card (extension: {extension or 'none'})")
    ok = run.results.add(run.mode, name, call.status == 200 and len(tapers) == 1,
                         f"draft {draft_text(draft_of(call))} beside the current order "
                         f"({patient.scenario}): answered {call.status}, {shown}")
    if not ok:
        return
    for index, next_step in enumerate(then):
        if index:  # each way out starts from the same drafted order
            call = draft_order(run, patient, screen, draft)
            tapers = [c for c in call.response.get("cards", [])
                      if c["extension"][EXTENSION]["kind"] == "supervised-taper"]
            run.ui.card_with(tapers[0]["summary"]).wait_for()
        if next_step == "dismiss":
            run.step(f"{name}: dismiss with a reason", check_dismiss, call)
        else:
            run.step(f"{name}: accept {next_step}", check_accept, screen, patient, tapers[0],
                     call, draft, next_step, shot if next_step == TAPER else None)


def check_not_silent(run: Run, name: str, what: str, draft: Draft) -> None:
    """A change of a dose the service cannot read is still worth a card (issue 23 item 4):
    silence would read as "nothing to worry about"."""
    patient = run.order_patients[what]
    call = draft_order(run, patient, "Rx Sign", draft)
    run.results.add(run.mode, name, call.status == 200 and bool(call.response.get("cards")),
                    f"draft {draft_text(draft_of(call))} beside \"{_current_sig(patient)}\" "
                    f"({patient.scenario}): answered {call.status}, "
                    f"cards {kinds(call.response) or 'none'}")


def _current_sig(patient: ScenarioPatient) -> str:
    for resource in patient.resources:
        if resource.get("resourceType") == "MedicationRequest":
            return ((resource.get("dosageInstruction") or [{}])[0]).get("text", "no sig")
    return "no order"


def check_accept(run: Run, name: str, screen: str, patient: ScenarioPatient, card: dict,
                 before: Exchange, draft: Draft, which: str, shot: str | None) -> None:
    """Accept one suggestion; the Sandbox's draft must be what cds.suggestion_clients
    predicts, and the next call about it must not warn again."""
    from cds.suggestion_clients import apply_suggestion

    (suggestion,) = [s for s in card["suggestions"]
                     if (s.get("extension") or {}).get(EXTENSION, {}).get("suggestion") == which]
    mark = run.traffic.mark()
    feedback = run.ui.accept(suggestion["label"])
    sent = feedback.body["feedback"][0]
    if which == TAPER and draft is STOP and patient is run.order_patients["tablets"]:
        run.keep(feedback, "feedback-accepted", "feedback after accepting the taper suggestion")
    answers = []
    if screen == "Rx View":
        # Accepting changes the draft, so the Sandbox calls order-select again at once.
        answers.append(("order-select", settled_order_select(run, mark)))
        run.ui.tab("Rx Sign")
    if shot:
        run.ui.view_screenshot(f"{shot}-3-accepted-{run.slug}")
    after = run.ui.sign()
    answers.append(("order-sign", after))
    if shot:  # once the Sandbox shows the answer
        cards = after.response.get("cards") if isinstance(after.response, dict) else None
        if cards:
            run.ui.card_with(cards[0]["summary"]).wait_for()
        else:
            run.ui.cards().first.wait_for(state="detached")
        run.ui.view_screenshot(f"{shot}-4-signed-again-{run.slug}")
    if patient is run.order_patients["tablets"] and draft in (CUT_20, STOP):
        change = "cut" if draft is CUT_20 else "stop"
        label = "" if which == TAPER else "-keep"
        run.keep(after, f"order-sign-after-accepting{label}-{change}",
                 f"order-sign with the draft left by accepting {which}")
    predicted = apply_suggestion([draft_of(before)], suggestion, "sandbox")[0]
    got = draft_of(after)
    warned = [f"{hook}: {alarm}" for hook, call in answers for alarm in alarms(call.response)]
    ok = (feedback.status == 200 and sent["outcome"] == "accepted" and
          sent["acceptedSuggestions"] == [{"id": suggestion["uuid"]}] and
          got == predicted and all(call.status == 200 for _, call in answers) and not warned)
    detail = (f"actions {[a['type'] for a in suggestion['actions']]}; feedback "
              f"{feedback.status}; the Sandbox's draft afterwards: {draft_text(got)}"
              f"{'' if got == predicted else f' (predicted: {draft_text(predicted)})'}; "
              f"the next {' and '.join(h for h, _ in answers)}: "
              f"{'; '.join(warned) or 'no warning'}")
    if which == KEEP:
        code = ((got.get("medicationCodeableConcept") or {}).get("coding") or [{}])[0].get("code")
        current = patient.current_medication_code
        ok = ok and code == current and bool(got.get("dosageInstruction"))
        detail += (f"; medication {code} (the current order's: {current}), "
                   f"{'signable' if got.get('dosageInstruction') else 'emptied'}")
    run.results.add(run.mode, name, ok, detail)


def check_report(run: Run, name: str) -> None:
    report = run.service.feedback_report()
    overridden = [line.strip() for line in report.splitlines()
                  if line.strip().startswith("overridden:")]
    named = all(any(code in line for line in overridden) for code in run.reason_codes)
    run.results.add(run.mode, name, bool(run.reason_codes) and named,
                    f"baclofen-cds feedback-report: {'; '.join(overridden) or 'no overrides'}")


def check_auth_offline(run: Run, name: str) -> None:
    calls = run.traffic.exchanges
    refused = [e for e in calls if e.status == 401]
    unsigned = [e for e in calls if not e.authorization]
    log = run.service.log_tail(200_000)
    run.results.add(
        run.mode, name,
        bool(calls) and not refused and not unsigned and not run.trap.requests and
        "auth_failure" not in log,
        f"{len(calls)} calls, each with the Sandbox's own JWT, {len(refused)} refused; "
        f"outbound attempts by the service: {run.trap.requests or 'none'}")


def run_mode(browser: Any, auth: bool, out: Path, site_url: str, fhir_url: str,
             order_patients: dict[str, ScenarioPatient], view_patients: list[ScenarioPatient],
             results: Results, capture_dir: Path | None) -> None:
    mode = "auth on" if auth else "auth off"
    slug = mode.replace(" ", "-")
    database = out / f"{slug}.db"
    database.unlink(missing_ok=True)
    trap = OutboundTrap().start()
    env = {"CDS_DATABASE_URL": f"sqlite:///{database}", **trap.proxy_env()}
    if auth:
        env |= {"CDS_AUTH": "on", "CDS_TRUST_FILE": str(REPO / "docs" / "trust-sandbox.yaml")}
    else:
        env["CDS_AUTH"] = "off"
    service = Service(env, [] if auth else ["--no-auth"], out / f"service-{slug}.log")
    if auth:
        # As an operator would: the URL the Sandbox calls (each token's aud) and the
        # origin the Sandbox is served from (CORS).
        service.env |= {"CDS_PUBLIC_BASE_URL": service.base_url, "CDS_CORS_ORIGINS": site_url}
    service.start()
    traffic = Traffic(service.base_url)
    context = loopback_context(browser, traffic)
    page = context.new_page()
    watch(page, traffic)
    ui = SandboxPage(page, traffic, site_url, fhir_url, out)
    run = Run(mode, ui, traffic, service, trap, results, order_patients, view_patients,
              capture_dir, fhir_url)
    try:
        run.step("discovery lists all services", check_discovery)
        for patient in view_patients:
            run.step(f"patient-view {patient.patient_id}", check_patient_view, patient)
        run.step("Rx View: baclofen cut to 20 mg tablets shows the taper card", check_order,
                 "tablets", "Rx View", CUT_20, (TAPER,))
        run.step("Rx View: baclofen stop shows the taper card", check_order,
                 "tablets", "Rx View", STOP)
        for draft in (CUT_10, CUT_20, STOP):
            then = (TAPER, KEEP, "dismiss") if draft is CUT_20 else (TAPER, KEEP)
            run.step(f"Rx Sign: baclofen {draft.name} shows the taper card", check_order,
                     "tablets", "Rx Sign", draft, then)
        run.step("Rx Sign: oral solution, cut to 10 mg tablets, shows the taper card",
                 check_order, "liquid", "Rx Sign", CUT_10, (TAPER, KEEP))
        run.step("Rx Sign: a cut from a dose the service cannot read is not silent",
                 check_not_silent, "unreadable dose", CUT_10)
        run.step("feedback report names the dismissal reasons", check_report)
        if auth:
            run.step("the Sandbox's JWT accepted offline", check_auth_offline)
        if traffic.page_errors:
            print(f"[{mode}] page errors: {traffic.page_errors[:3]}")
    finally:
        context.close()
        service.stop()
        trap.stop()
