"""The checks against the real service, as a clinician would meet them in the Sandbox.

One run per authentication mode: discovery, patient-view, then in Rx View (order-select)
and Rx Sign (order-sign) a drafted baclofen cut and stop for a patient on 60 mg/day,
accepting or dismissing the taper card, and the feedback report afterwards.
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
PRODUCT = "Baclofen 20 MG Oral Tablet"  # the order patient takes 20 mg three times a day
SEARCH = "baclofen 20"
# What the Sandbox can draft: a number of pills (1-5) and a frequency; a stop is a draft
# whose End Date is today. The cut: 1 tablet once a day, 20 mg/day instead of 60.
DRAFTS = {"cut": {"pills": 1, "times": 1, "ends_today": False},
          "stop": {"pills": 1, "times": 3, "ends_today": True}}


@dataclass
class Run:
    mode: str
    ui: SandboxPage
    traffic: Traffic
    service: Service
    trap: OutboundTrap
    results: Results
    order_patient: ScenarioPatient
    view_patients: list[ScenarioPatient]
    capture_dir: Path | None
    fhir_url: str
    reason_codes: list[str] = field(default_factory=list)

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
    discovery = run.ui.open(run.order_patient.patient_id, [run.discovery_url])
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


def check_order(run: Run, name: str, screen: str, change: str, then: str) -> None:
    ui = run.ui
    ui.open(run.order_patient.patient_id, [run.discovery_url])
    mark = run.traffic.mark()
    ui.tab(screen)
    if screen == "Rx View" and change == "cut":
        sparse = settled_order_select(run, mark)
        run.keep(sparse, "order-select-no-medication",
                 "order-select when Rx View opens, before a medication is chosen")
        mark = run.traffic.mark()
    ui.choose_medication(SEARCH, PRODUCT)
    draft = DRAFTS[change]
    ui.set_dose(draft["pills"], draft["times"])
    if draft["ends_today"]:
        ui.set_end_date_today()
    hook = "order-select" if screen == "Rx View" else "order-sign"
    call = settled_order_select(run, mark) if screen == "Rx View" else ui.sign()
    run.keep(call, f"{hook}-{change}", f"{hook} for a drafted baclofen {change} ({screen})")
    tapers = [c for c in call.response.get("cards", [])
              if c["extension"][EXTENSION]["kind"] == "supervised-taper"]
    if tapers:
        ui.card_with(tapers[0]["summary"]).wait_for()
        ui.view_screenshot(f"sandbox-{hook}-{change}-{run.mode.replace(' ', '-')}")
    extension = (call.response.get("extension") or {}).get(EXTENSION, {})
    shown = (f"cards {kinds(call.response)}" if call.response.get("cards")
             else f"no card (extension: {extension or 'none'})")
    ok = run.results.add(run.mode, name, call.status == 200 and len(tapers) == 1,
                         f"draft {draft_text(draft_of(call))} beside the active 60 mg/day: "
                         f"answered {call.status}, {shown}")
    if not ok:
        return
    if then == "accept":
        run.step(f"{name}: accept the taper", check_accept, screen, tapers[0], change)
    elif then == "dismiss":
        run.step(f"{name}: dismiss with a reason", check_dismiss, call)


def check_accept(run: Run, name: str, screen: str, card: dict, change: str) -> None:
    (recommended,) = [s for s in card["suggestions"] if s.get("isRecommended")]
    feedback = run.ui.accept(recommended["label"])
    sent = feedback.body["feedback"][0]
    run.keep(feedback, "feedback-accepted", "feedback after accepting the taper suggestion")
    if screen == "Rx View":
        run.ui.tab("Rx Sign")
    after = run.ui.sign()  # the Sandbox's draft as it now stands
    run.keep(after, f"order-sign-after-accepting-{change}",
             "order-sign with the draft left by accepting the taper suggestion")
    resource = next((a.get("resource") for a in recommended["actions"]
                     if a["type"] in ("create", "update")), {}) or {}
    wanted = resource.get("medicationCodeableConcept", {}).get("coding", [{}])[0].get("code")
    draft = draft_of(after)
    got = (draft.get("medicationCodeableConcept") or {}).get("coding", [{}])[0].get("code")
    run.results.add(
        run.mode, name,
        feedback.status == 200 and sent["outcome"] == "accepted" and
        sent["acceptedSuggestions"] == [{"id": recommended["uuid"]}] and
        got is not None and got == wanted,
        f"actions {[a['type'] for a in recommended['actions']]}; feedback {feedback.status} "
        f"(accepted); the Sandbox's draft afterwards: {draft_text(draft)} (the taper order's "
        f"medication {wanted}; the Sandbox applies no dose or timing from a suggestion)")


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
             order_patient: ScenarioPatient, view_patients: list[ScenarioPatient],
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
    run = Run(mode, ui, traffic, service, trap, results, order_patient, view_patients,
              capture_dir, fhir_url)
    try:
        run.step("discovery lists all services", check_discovery)
        for patient in view_patients:
            run.step(f"patient-view {patient.patient_id}", check_patient_view, patient)
        for screen, change, then in (("Rx View", "cut", "accept"), ("Rx View", "stop", "none"),
                                     ("Rx Sign", "cut", "dismiss"), ("Rx Sign", "stop", "accept")):
            run.step(f"{screen}: baclofen {change} shows the taper card", check_order,
                     screen, change, then)
        run.step("feedback report names the dismissal reasons", check_report)
        if auth:
            run.step("the Sandbox's JWT accepted offline", check_auth_offline)
        if traffic.page_errors:
            print(f"[{mode}] page errors: {traffic.page_errors[:3]}")
    finally:
        context.close()
        service.stop()
        trap.stop()
