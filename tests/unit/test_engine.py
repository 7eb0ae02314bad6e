"""Engine discipline: the durable_rules rule set agrees with rules/rules.yaml exactly, sessions
are isolated and removed, the same input gives the same output."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from cds.assessment import ClinicalEngine
from cds.cards.extension import card_kind
from cds.facts.record import PatientRecord
from cds.knowledge import load_knowledge
from cds.rules_engine import _HOST, RulesEngine
from tests.clinical_builders import (
    NOW,
    SNOMED,
    at,
    baclofen_request,
    condition,
    dosage,
    observation,
)

K = load_knowledge()
ENGINE = ClinicalEngine(K)


def with_meta(resource: dict, last_updated) -> dict:
    return {**resource, "meta": {"lastUpdated": last_updated.isoformat()}}


def stopped_two_days_ago(resources=(), days_ago=120, pid="p1"):
    """Oral baclofen 30 mg/day for `days_ago` days, set to stopped two days ago."""
    order = with_meta(baclofen_request(f"mr-{pid}", status="stopped", days_ago=days_ago),
                      at(days=2))
    return PatientRecord([order, *resources], [])


def draft_stop(days_ago=120, pid="p1"):
    current = baclofen_request(f"mr-{pid}", days_ago=days_ago)
    return PatientRecord([current], [dict(current, status="stopped")])


def kinds(assessment):
    return [(card_kind(c), c["indicator"]) for c in assessment.cards]


def test_session_state_is_deleted_after_each_run(monkeypatch):
    engine = RulesEngine(K)
    seen = []
    monkeypatch.setattr("cds.rules_engine.uuid.uuid4",
                        lambda: type("U", (), {"hex": "fixed-sid"})())
    engine.run([random_subject(random.Random(1), "oral")])
    seen.append(engine.session_exists("fixed-sid"))
    # The probe itself works: a session left alive is seen.
    _HOST.assert_fact(engine.ruleset_name, {"id": "x", "kind": "session_opened", "sid": "probe"})
    seen.append(engine.session_exists("probe"))
    _HOST.delete_state(engine.ruleset_name, "probe")
    assert seen == [False, True]


def test_the_rule_set_is_built_once_per_knowledge():
    assert RulesEngine(K).ruleset_name == ENGINE.rules.ruleset_name


def test_same_input_same_findings_in_the_same_order():
    data = stopped_two_days_ago([observation("8310-5", 39.1, "Cel", oid="t"),
                                 observation("9269-2", 14, "{score}", oid="g"),
                                 observation("8867-4", 130, "/min", oid="h")])
    runs = [ENGINE.assess("patient-view", {"patientId": "p1"}, data, NOW) for _ in range(5)]
    first = runs[0]
    for other in runs[1:]:
        assert [(f.kind.kind, f.subject.id, f.rules) for f in other.findings] == \
            [(f.kind.kind, f.subject.id, f.rules) for f in first.findings]
        assert [{k: v for k, v in c.items() if k != "uuid"} for c in other.cards] == \
            [{k: v for k, v in c.items() if k != "uuid"} for c in first.cards]
    assert len({c["uuid"] for r in runs for c in r.cards}) == len(runs) * len(first.cards)
    assert kinds(first) == [("emergency-evaluation", "critical")]


def test_concurrent_assessments_never_share_facts():
    """Fever for odd patients only: a leak would turn an even patient's card critical."""
    def assess(i):
        signs = [observation("8310-5", 39.4, "Cel", oid=f"t{i}")] if i % 2 else []
        data = stopped_two_days_ago(signs, pid=f"p{i}")
        return i, kinds(ENGINE.assess("patient-view", {"patientId": f"p{i}"}, data, NOW))

    barrier = threading.Barrier(8)

    def assess_together(i):
        if i < 8:
            barrier.wait()
        return assess(i)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(assess_together, range(200)))
    for i, found in results:
        expected = "emergency-evaluation" if i % 2 else "supervised-taper"
        assert found == [(expected, "critical" if i % 2 else "warning")], i


def test_patient_never_on_baclofen_gets_no_cards_even_with_abnormal_vitals():
    data = PatientRecord([observation("8310-5", 39.8, "Cel"), observation("8867-4", 140, "/min"),
                          condition(SNOMED, "419284004", "Altered mental status", days_ago=1)],
                         [])
    assert ENGINE.assess("patient-view", {"patientId": "p1"}, data, NOW).cards == []


def test_short_course_gives_no_card_and_unknown_dose_still_warns():
    assert ENGINE.assess("order-sign", {}, draft_stop(days_ago=5), NOW).cards == []
    current = baclofen_request("mr1", dosages=[dosage(None)])
    data = PatientRecord([current], [dict(current, status="stopped")])
    (card,) = ENGINE.assess("order-sign", {}, data, NOW).cards
    assert "unknown dose" in card["summary"]
    assert "could not be determined" in card["detail"]


def test_a_finding_carries_its_subject_facts_and_rules():
    (finding,) = ENGINE.assess("order-sign", {"patientId": "p1"}, draft_stop(), NOW).findings
    facts = finding.facts
    assert finding.kind.kind == "supervised-taper" and finding.rules == ["oral-interruption"]
    assert facts["event"] == "stop" and facts["draft"] and facts["route"] == "oral"
    assert facts["daily_dose"] == 30 and facts["new_daily_dose"] == 0
    assert 119 < facts["exposure_days"] < 121 and facts["risk_high"]
    assert [f.key for f in finding.subject.risk_factors] == ["long_exposure"]
    assert finding.patient_ref == "Patient/p1"


def test_taper_proposal_suggestions_are_attached(monkeypatch):
    suggestion = {"label": "Taper over 2 weeks", "actions": []}
    from cds.taper.proposal import TaperProposal

    monkeypatch.setattr("cds.taper.proposal.taper_proposal",
                        lambda finding, knowledge: TaperProposal(suggestions=[suggestion]))
    (card,) = ENGINE.assess("order-sign", {}, draft_stop(), NOW).cards
    assert card["suggestions"] == [suggestion]
    assert card["selectionBehavior"] == "at-most-one"


def test_a_deceased_patient_gets_no_card_whatever_fires():
    patient = {"resourceType": "Patient", "id": "p1", "deceasedBoolean": True}
    data = stopped_two_days_ago([patient,
                                 observation("8310-5", 39.4, "Cel")])
    assert ENGINE.assess("patient-view", {"patientId": "p1"}, data, NOW).cards == []


# ---------------------------------------------------------------- durable_rules == rules.yaml


def random_subject(rng: random.Random, sid: str) -> dict:
    """A subject fact dict over the whole fact catalogue, with values near the thresholds."""
    numbers = sorted({0.0, 1.0, 5.0, *(v + d for v in K.threshold_values.values()
                                        for d in (-1, 0, 1))})
    facts: dict = {"id": sid}
    for field in K.fact_fields.values():
        if field.kind == "flag":
            facts[field.name] = rng.random() < 0.3
        elif field.kind == "count":
            facts[field.name] = rng.choice([0, 0, 1, 2])
        elif field.kind == "number":
            facts[field.name] = rng.choice(numbers)
        else:
            facts[field.name] = rng.choice(field.choices)
    return facts


def test_thousands_of_random_sessions_fire_exactly_the_rules_whose_conditions_hold():
    """durable_rules runs the compiled rule set; the oracle evaluates the same parsed
    conditions in Python. No crash, no leak between sessions, exact firings."""
    rng = random.Random(7)
    engine = RulesEngine(K)
    fired_somewhere: set[str] = set()
    for _ in range(3000):
        subjects = [random_subject(rng, f"s{j}") for j in range(rng.randint(0, 3))]
        expected = {(rule.id, s["id"]) for s in subjects for rule in K.rules
                    if rule.when.holds(s)}
        got = {(f.rule, f.subject_id) for f in engine.run(subjects)}
        assert got == expected
        fired_somewhere |= {rule for rule, _ in got}
    assert len(fired_somewhere) >= len(K.rules) - 2  # the generator reaches nearly every rule
