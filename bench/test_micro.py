"""Micro-benchmarks of each step of the hot path, so a regression can be located.

    .venv/bin/python -m pytest bench/test_micro.py --benchmark-columns=median,iqr,ops

Each step is the module the request flows through (validate -> gather -> facts -> rules
-> findings -> cards), called as the pipeline calls it. Not part of the test suite
(testpaths is tests/); no timing is asserted anywhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench.payloads import order_sign_stop, patient_view_no_baclofen
from cds import envelope
from cds.assessment import ClinicalEngine
from cds.cards.builder import build_card
from cds.facts.record import PatientRecord
from cds.facts.relevance import Relevance
from cds.findings import build_findings
from cds.knowledge import load_knowledge
from cds.pipeline import check_record
from cds.resources import check_resources, flatten
from cds.web.json_body import max_nesting_depth, parse_json_body

NOW = datetime.now(UTC)
KNOWLEDGE = load_knowledge()
ENGINE = ClinicalEngine(KNOWLEDGE)
RELEVANCE = Relevance(KNOWLEDGE)


def resources_of(request: dict) -> list[dict]:
    return [r for value in request["prefetch"].values() for r in flatten(value)]


def drafts_of(request: dict) -> list[dict]:
    return flatten(request["context"].get("draftOrders"))


def record_of(request: dict) -> PatientRecord:
    checked, drafts = check_record(RELEVANCE, resources_of(request), drafts_of(request), NOW)
    return PatientRecord(resources=checked.resources, draft_orders=drafts.resources)


@pytest.fixture(scope="module", params=["realistic", "large"])
def order_sign(request):
    sizes = {"realistic": (300, 20), "large": (2000, 100)}[request.param]
    return order_sign_stop(NOW, *sizes)


def test_depth_check(benchmark, order_sign):
    raw = json.dumps(order_sign).encode()
    assert benchmark(max_nesting_depth, raw, 64) <= 64


def test_parse_body(benchmark, order_sign):
    raw = json.dumps(order_sign).encode()
    benchmark(parse_json_body, raw, 64)


def test_validate_envelope(benchmark, order_sign):
    benchmark(envelope.validate, order_sign, "request")


def test_relevance(benchmark, order_sign):
    resources = resources_of(order_sign)
    assert benchmark(RELEVANCE.select, resources, NOW)


def test_fhir_models(benchmark, order_sign):
    kept = RELEVANCE.select(resources_of(order_sign), NOW)
    assert benchmark(check_resources, kept).resources


def test_check_record(benchmark, order_sign):
    resources, drafts = resources_of(order_sign), drafts_of(order_sign)
    benchmark(check_record, RELEVANCE, resources, drafts, NOW)


def test_extract_facts(benchmark, order_sign):
    record = record_of(order_sign)
    benchmark(ENGINE.extractor.extract, "order-sign", order_sign["context"], record, NOW)


def test_rule_evaluation(benchmark, order_sign):
    facts = ENGINE.extractor.extract("order-sign", order_sign["context"], record_of(order_sign),
                                     NOW)
    assert benchmark(ENGINE.rules.run, facts.rule_facts())


def test_card_building(benchmark, order_sign):
    facts = ENGINE.extractor.extract("order-sign", order_sign["context"], record_of(order_sign),
                                     NOW)
    findings = build_findings(ENGINE.rules.run(facts.rule_facts()), facts, KNOWLEDGE)
    assert findings
    benchmark(lambda: [build_card(f, KNOWLEDGE) for f in findings])


def test_whole_assessment(benchmark, order_sign):
    record = record_of(order_sign)
    assert benchmark(ENGINE.assess, "order-sign", order_sign["context"], record, NOW).cards


def test_no_baclofen_relevance(benchmark):
    request = patient_view_no_baclofen(NOW)
    benchmark(check_record, RELEVANCE, resources_of(request), [], NOW)
