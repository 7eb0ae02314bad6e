"""How the work of one hook call grows with its input (issues 25.1 and 26.2).

    .venv/bin/python -m bench.growth [--part text|records] [--sizes 1000,10000,100000]
                                     [--budget 30] [--json FILE]

In-process, no server: each step is timed on inputs of 1k, 10k and 100k characters
(free text) or resources (records), best of three. The verdict is the growth exponent
from the smallest to the largest size, log(t_large / t_small) / log(n_large / n_small):
1 for linear work, 2 for quadratic. It allows 1.35 (n log n, and the step in time per
item once the input no longer fits the processor's caches, about x2 between 10k and
100k characters); a step that takes longer than `--budget` seconds at any size has
failed. Exits 1 when any step grows faster, so a before/after comparison is one command
each.

text: every parser that reads request text, on adversarial texts (long digit runs,
digits around `x`, decimals, fractions, number words, repeated negations, markup), each
alone with its length bound lifted, and the whole hook call with the text placed in
every free-text field of a clinical fixture (service limits lifted, so that 100k
characters reach the facts).

records: the whole hook call (relevance, FHIR models, facts, rules, cards) on records of
n temperature Observations, MedicationRequests, baclofen orders, draft orders,
administrations, Medications by reference and Conditions, limits lifted likewise.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.payloads import _iso, bundle, medication_request, observation, order_sign_stop

SIZES = (1_000, 10_000, 100_000)
ALLOWED_EXPONENT = 1.35  # linear is 1, quadratic 2
NOISE_SECONDS = 0.002  # below this at the largest size, a step is too quick to judge


class OverBudget(Exception):
    pass


def _timed(step: Callable[[], Any], budget: float, repeats: int = 3) -> float:
    """Best of `repeats` wall-clock seconds; OverBudget past `budget` (SIGALRM, which the
    regular expression engine honours every few thousand steps)."""
    def expire(_signum, _frame):
        raise OverBudget

    best = float("inf")
    previous = signal.signal(signal.SIGALRM, expire)
    try:
        for _ in range(repeats):
            signal.setitimer(signal.ITIMER_REAL, budget)
            began = time.perf_counter()
            try:
                step()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            best = min(best, time.perf_counter() - began)
            if best > budget / 4:
                break  # one slow run says enough
    finally:
        signal.signal(signal.SIGALRM, previous)
    return best


# -- free text ---------------------------------------------------------------------------

def _fill(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


TEXTS: dict[str, Callable[[int], str]] = {
    "digits": lambda n: "1" * n,
    "digit runs around x": lambda n: "1" * (n // 2) + "x" + "2" * (n - n // 2 - 1),
    "digits mixed with x": lambda n: _fill("1234567x", n),
    "decimals": lambda n: _fill("1.", n),
    "fractions": lambda n: _fill("1/", n),
    "number lists": lambda n: _fill("5, 10 or ", n),
    "number words": lambda n: _fill("one and a half ", n),
    "amounts": lambda n: _fill("10 mg x ", n),
    "hours": lambda n: _fill("q1", n),
    "digits then spaces": lambda n: "1" * (n // 2) + " " * (n - n // 2 - 3) + "mgx",
    "negated words": lambda n: _fill("no fever ", n),
    "markup": lambda n: _fill("[a](http://b.com) *c* ", n),
}


def _text_steps() -> dict[str, Callable[[str], Any]]:
    from cds.cards.text import escape_markdown, plain
    from cds.facts import pump, sig
    from cds.facts.recognition import Recogniser
    from cds.knowledge import load_knowledge

    knowledge = load_knowledge()
    recogniser = Recogniser(knowledge)
    worded = [s for s in knowledge.code_sets.values() if s.words and s.negated is not None]
    pipeline = _pipeline(knowledge)
    fixture = _fixture("13-fever-fahrenheit-after-stop")

    def whole_call(text: str) -> Any:
        request = _poisoned(fixture.request, text)
        return pipeline.call(fixture.service, request)

    return {
        # Before issue 25.1 there was no bound to lift.
        "sig (length bound lifted)": lambda t: getattr(sig, "read_sig_text", sig.read_sig)(
            t, knowledge),
        "sig (as read)": lambda t: sig.read_sig(t, knowledge),
        "medication text": lambda t: recogniser._from_text(t, "baclofen"),
        "pump note": lambda t: (pump._volume(t), pump._concentration(t)),
        "code-set words": lambda t: [s.matches_text(t) for s in worded],
        "card value": lambda t: (escape_markdown(t), plain(t)),
        "whole hook call": whole_call,
    }


TEXT_KEYS = {"text", "display", "valueString", "name", "patientInstruction", "comment"}


def _poisoned(value: Any, text: str) -> Any:
    if isinstance(value, dict):
        return {k: (text if k in TEXT_KEYS and isinstance(v, str) else _poisoned(v, text))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_poisoned(v, text) for v in value]
    return value


def _fixture(name: str):
    from cds.fixtures import FIXTURE_DIR, load_fixture

    return load_fixture(FIXTURE_DIR / f"{name}.json", datetime.now(UTC))


def _pipeline(knowledge):
    from cds.assessment import ClinicalEngine
    from cds.config import Settings
    from cds.pipeline import HookPipeline
    from cds.services import ServiceRegistry, build_services, observation_code_tokens

    lifted = {"max_resources": 10**9, "max_read_resources": 10**9}
    # Only the limits this build has (bench.growth also runs against older builds).
    settings = replace(Settings(), auth_enabled=False,
                       **{k: v for k, v in lifted.items() if hasattr(Settings, k)})
    registry = ServiceRegistry(build_services(observation_code_tokens(knowledge)))
    return HookPipeline(settings, registry, knowledge, ClinicalEngine(knowledge), None)


def run_text(sizes: tuple[int, ...], budget: float, only: str = "") -> list[dict]:
    rows = []
    steps = _text_steps()
    for step_name, step in steps.items():
        for text_name, make in TEXTS.items():
            if only not in f"{step_name} / {text_name}":
                continue
            rows.append(_grow(f"{step_name} / {text_name}",
                              {n: (lambda n=n, step=step, make=make: step(make(n)))
                               for n in sizes}, budget))
    return rows


# -- records -----------------------------------------------------------------------------

def _stop_request(now: datetime) -> dict:
    request = order_sign_stop(now, observations=0, medication_requests=4)
    request["prefetch"]["observations"] = bundle([])
    return request


def _with(request: dict, key: str, resources: list[dict]) -> dict:
    held = [entry["resource"] for entry in request["prefetch"][key]["entry"]]
    request["prefetch"][key] = bundle(held + resources)
    return request


def _temperatures(now: datetime, n: int) -> dict:
    # Fevers and low temperatures in turn within the last day (a monitor feed): every
    # reading is a sign, so the signs themselves are many.
    obs = [observation("8310-5", "Body temperature", "Cel", 39.0 if i % 2 else 34.5,
                       now - timedelta(seconds=86400 * i / n)) for i in range(n)]
    return _with(_stop_request(now), "observations", obs)


def _other_orders(now: datetime, n: int) -> dict:
    meds = [medication_request("197361", "amlodipine 5 MG Oral Tablet",
                               "active" if i % 3 else "completed",
                               now - timedelta(hours=i)) for i in range(n)]
    return _with(_stop_request(now), "medications", meds)


def _baclofen_orders(now: datetime, n: int) -> dict:
    meds = []
    for i in range(n):
        order = medication_request("197391", "baclofen 10 MG Oral Tablet", "completed",
                                   now - timedelta(days=400) - timedelta(hours=6 * i),
                                   per_day=3, tablets=1 + i % 2)
        meds.append(order)
    return _with(_stop_request(now), "medications", meds)


def _draft_orders(now: datetime, n: int) -> dict:
    request = _stop_request(now)
    drafts = request["context"]["draftOrders"]["entry"]
    for i in range(n):
        order = medication_request("197361", "amlodipine 5 MG Oral Tablet", "draft", now)
        order["id"] = f"draft-{i}"
        drafts.append({"resource": order})
    return request


def _administrations(now: datetime, n: int) -> dict:
    given = [{
        "resourceType": "MedicationAdministration", "id": f"ma-{i}", "status": "completed",
        "medicationCodeableConcept": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197391"}],
            "text": "baclofen 10 MG Oral Tablet"},
        "subject": {"reference": "Patient/bench-patient"},
        "effectiveDateTime": _iso(now - timedelta(hours=8 * i)),
        "dosage": {"dose": {"value": 20, "unit": "mg"},
                   "route": {"coding": [{"system": "http://snomed.info/sct",
                                         "code": "26643006"}]}},
    } for i in range(n)]
    return _with(_stop_request(now), "administrations", given)


def _medications_by_reference(now: datetime, n: int) -> dict:
    resources: list[dict] = []
    for i in range(n):
        resources.append({"resourceType": "Medication", "id": f"med-{i}",
                          "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/"
                                                         "rxnorm", "code": "197361"}]}})
        order = medication_request("197361", "", "completed", now - timedelta(hours=i))
        del order["medicationCodeableConcept"]
        order["medicationReference"] = {"reference": f"Medication/med-{i}"}
        resources.append(order)
    return _with(_stop_request(now), "medications", resources[: n])


def _taper_steps(now: datetime, n: int) -> dict:
    """One baclofen order written as n dated steps (a taper signed as one order)."""
    request = _stop_request(now)
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    template = order["dosageInstruction"][0]
    order["dosageInstruction"] = [{
        **template, "sequence": i + 1,
        "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d", "boundsPeriod": {
            "start": _iso(now - timedelta(days=200) + timedelta(hours=i)),
            "end": _iso(now - timedelta(days=200) + timedelta(hours=i + 1))}}},
    } for i in range(n)]
    return request


def _conditions(now: datetime, n: int) -> dict:
    conditions = [{
        "resourceType": "Condition", "id": f"c-{i}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                 "condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "386661006"}],
                 "text": "fever"},
        "subject": {"reference": "Patient/bench-patient"},
        "onsetDateTime": _iso(now - timedelta(hours=i)),
    } for i in range(n)]
    return _with(_stop_request(now), "conditions", conditions)


RECORDS: dict[str, Callable[[datetime, int], dict]] = {
    "temperature Observations": _temperatures,
    "other MedicationRequests": _other_orders,
    "baclofen MedicationRequests": _baclofen_orders,
    "draft orders": _draft_orders,
    "MedicationAdministrations": _administrations,
    "Medications by reference": _medications_by_reference,
    "Conditions": _conditions,
    "dated steps of one order": _taper_steps,
}


def run_records(sizes: tuple[int, ...], budget: float, only: str = "") -> list[dict]:
    from cds.knowledge import load_knowledge

    pipeline = _pipeline(load_knowledge())
    now = datetime.now(UTC)
    rows = []
    for name, build in RECORDS.items():
        if only in name:
            rows.append(_grow(name, {n: _record_call(pipeline, build(now, n)) for n in sizes},
                              budget))
    return rows


def _record_call(pipeline, request: dict) -> Callable[[], Any]:
    # Parsed afresh for each run, as the service parses each body (orjson, as it does).
    body = orjson.dumps(request)
    return lambda: pipeline.call("baclofen-order-sign", orjson.loads(body))


# -- verdict -----------------------------------------------------------------------------

def _grow(name: str, runs: dict[int, Callable[[], Any]], budget: float) -> dict:
    seconds: dict[int, float | None] = {}
    failed = None
    for n, run in runs.items():
        try:
            seconds[n] = _timed(run, budget)
        except OverBudget:
            seconds[n] = None
            failed = f"over {budget:g} s at {n}"
            break
    sizes = sorted(runs)
    smallest, largest = seconds.get(sizes[0]), seconds.get(sizes[-1])
    exponent = None
    if smallest and largest and len(sizes) > 1:
        exponent = math.log(largest / smallest) / math.log(sizes[-1] / sizes[0])
    ok = failed is None and largest is not None and (
        largest < NOISE_SECONDS or (exponent is not None and exponent <= ALLOWED_EXPONENT))
    row = {"step": name, "ok": ok, "failed": failed,
           "ms": {str(n): (round(s * 1000, 3) if s is not None else None)
                  for n, s in seconds.items()},
           "exponent": round(exponent, 2) if exponent is not None else None}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("text", "records"), action="append")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds one run of one step may take")
    parser.add_argument("--only", help="run only steps whose name contains this")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    parts = args.part or ["text", "records"]
    rows: list[dict] = []
    if "text" in parts:
        rows += run_text(sizes, args.budget, args.only or "")
    if "records" in parts:
        rows += run_records(sizes, args.budget, args.only or "")
    print("\n| step | " + " | ".join(f"ms at {n:,}" for n in sizes) + " | exponent | ok |")
    print("|---|" + "---|" * (len(sizes) + 2))
    for r in rows:
        cells = [str(r["ms"].get(str(n), "-")) for n in sizes]
        note = r["failed"] or str(r["exponent"])
        print(f"| {r['step']} | " + " | ".join(cells) + f" | {note} | "
              f"{'yes' if r['ok'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
