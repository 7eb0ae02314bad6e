"""Micro-benchmarks of each step of the hot path, so a regression can be located.

    .venv/bin/python -m pytest bench/test_micro.py --benchmark-columns=median,iqr,ops

Not part of the test suite (testpaths is tests/); no timing is asserted anywhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench.payloads import order_sign_stop, patient_view_no_baclofen
from cds import envelope
from cds.assessment import ClinicalEngine
from cds.cards import build_card
from cds.facts import extract_facts
from cds.facts.record import PatientRecord
from cds.facts.relevance import select_worth_modelling
from cds.findings import build_findings
from cds.knowledge import load_knowledge
from cds.resources import check_resources, flatten
from cds.web.json_body import parse_json_body

NOW = datetime.now(UTC)
KNOWLEDGE = load_knowledge()
ENGINE = ClinicalEngine(KNOWLEDGE)


def clinical_data(request: dict) -> PatientRecord:
    resources = [r for value in request["prefetch"].values() for r in flatten(value)]
    checked = check_resources(resources, lambda r: KNOWLEDGE.is_relevant(r, NOW))
    drafts = flatten(request["context"].get("draftOrders"))
    return PatientRecord(checked.resources, drafts)


@pytest.fixture(scope="module", params=["realistic", "large"])
def order_sign(request):
    sizes = {"realistic": (300, 20), "large": (2000, 100)}[request.param]
    return order_sign_stop(NOW, *sizes)


def test_parse_body(benchmark, order_sign):
    raw = json.dumps(order_sign).encode()
    benchmark(parse_json_body, raw, 64)


def test_validate_envelope(benchmark, order_sign):
    benchmark(envelope.validate, order_sign, "request")


def test_check_resources(benchmark, order_sign):
    resources = [r for value in order_sign["prefetch"].values() for r in flatten(value)]
    benchmark(lambda: check_resources(select_worth_modelling(resources, KNOWLEDGE, NOW)))


def test_extract_facts(benchmark, order_sign):
    data = clinical_data(order_sign)
    benchmark(extract_facts, "order-sign", order_sign["context"], data, NOW, KNOWLEDGE)


def test_rule_evaluation(benchmark, order_sign):
    facts = extract_facts("order-sign", order_sign["context"], clinical_data(order_sign), NOW,
                          KNOWLEDGE)
    benchmark(ENGINE.rules.run, facts.rule_facts())


def test_card_building(benchmark, order_sign):
    facts = extract_facts("order-sign", order_sign["context"], clinical_data(order_sign), NOW,
                          KNOWLEDGE)
    findings = build_findings(ENGINE.rules.run(facts.rule_facts()), facts)
    assert findings
    benchmark(lambda: [build_card(f, KNOWLEDGE) for f in findings])


def test_no_baclofen_relevance_filter(benchmark):
    request = patient_view_no_baclofen(NOW)
    resources = [r for value in request["prefetch"].values() for r in flatten(value)]
    benchmark(lambda: [r for r in resources if KNOWLEDGE.is_relevant(r, NOW)])
