"""`baclofen-cds taper`: print a taper schedule, and optionally its FHIR order."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import TextIO

from cds.knowledge import KnowledgeError, load_knowledge
from cds.product import Product
from cds.taper.fhir import taper_medication_request
from cds.taper.params import TaperParams
from cds.taper.planner import (
    MAX_ADMINISTRATIONS_PER_DAY,
    IntrathecalNoOralPlan,
    plan_taper,
)
from cds.taper.products import find_product
from cds.taper.render import plan_text

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baclofen-cds taper",
        description="Plan an oral baclofen taper (parameters: rules/taper.yaml).",
    )
    parser.add_argument("--daily-dose", type=float, required=True, help="current mg/day")
    parser.add_argument(
        "--product",
        default="",
        help="RxCUI or text (e.g. 197391, ozobax, '5 mg/mL suspension', tablet); "
        "omitted or unknown: planned in mg with 5 mg units",
    )
    parser.add_argument("--risk", choices=("standard", "high"), default="standard")
    parser.add_argument(
        "--frequency",
        type=int,
        choices=range(1, MAX_ADMINISTRATIONS_PER_DAY + 1),
        metavar=f"1-{MAX_ADMINISTRATIONS_PER_DAY}",
        help="administrations per day now (default: rules/taper.yaml)",
    )
    parser.add_argument("--target", type=float, default=0.0, help="end dose, mg/day (0 = stop)")
    parser.add_argument("--start", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    parser.add_argument("--fhir", action="store_true", help="also print the MedicationRequest")
    parser.add_argument("--patient", default="Patient/example", help="subject for --fhir")
    return parser


def _product(query: str, params: TaperParams) -> tuple[Product, dict]:
    """The product and the medication CodeableConcept to order it with."""
    product = find_product(query, params) if query else None
    if product is None:
        text = query or "baclofen"
        return Product(name=text), {"text": text}
    concept: dict = {"text": product.name}
    if product.rxcui:
        concept["coding"] = [{"system": RXNORM, "code": product.rxcui, "display": product.name}]
    return product, concept


def run_taper_cli(argv: list[str], out: TextIO | None = None, today: date | None = None,
                  err: TextIO | None = None) -> int:
    """Exit codes: 0 plan printed (or intrathecal advice), 1 no order for --fhir (an
    intrathecal product), 2 bad arguments or dose. With --fhir the MedicationRequest is all
    that goes to `out`, so `taper --fhir > order.json` is valid JSON; the table goes to `err`."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has already printed the usage error
        return int(exc.code or 0)
    try:
        params = load_knowledge().taper
    except KnowledgeError as exc:
        print(f"error: {exc}", file=err)
        return 1
    product, medication = _product(args.product, params)
    start = args.start or today or date.today()
    try:
        plan = plan_taper(
            args.daily_dose, product, args.frequency, args.risk, start, params, args.target
        )
    except IntrathecalNoOralPlan as exc:
        print(exc.advice, file=err if args.fhir else out)
        return 1 if args.fhir else 0
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 2
    text_out = err if args.fhir else out
    print(f"Product: {product.name}", file=text_out)
    print(plan_text(plan), file=text_out)
    if args.fhir:
        request = taper_medication_request(
            plan, product, args.patient, medication, None, None, params=params
        )
        print(json.dumps(request, indent=2), file=out)
    return 0
