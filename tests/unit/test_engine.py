"""Engine discipline: sessions isolated per assessment, state removed, same input same output."""

import threading
from concurrent.futures import ThreadPoolExecutor

from cds.assessment import ClinicalEngine
from cds.facts.record import PatientRecord
from cds.knowledge import load_knowledge
from cds.rules_engine import _HOST, RulesEngine
from tests.clinical_builders import NOW, SNOMED, baclofen_request, condition, dosage, observation

K = load_knowledge()
ENGINE = ClinicalEngine(K)


def stop_with(resources=(), days_ago=120, pid="p1"):
    current = baclofen_request(f"mr-{pid}", days_ago=days_ago)
    return PatientRecord([current, *resources], [dict(current, status="stopped")])


def kinds(assessment):
    return [(c["extension"]["org.baclofen-cds"]["kind"], c["indicator"])
            for c in assessment.cards]


def test_session_state_is_deleted_after_each_run(monkeypatch):
    engine = RulesEngine(K)
    seen = []
    monkeypatch.setattr("cds.rules_engine.uuid.uuid4",
                        lambda: type("U", (), {"hex": "fixed-sid"})())
    engine.run([{"id": "e", "kind": "event", "type": "stop", "route": "oral",
                 "dose_known": True, "exposure_known": True, "exposure_days": 90.0,
                 "severe_signs": 0, "intrathecal_severe_signs": 0, "early_signs": 0}])
    seen.append(engine.session_exists("fixed-sid"))
    # The probe itself works: a session left alive is seen.
    _HOST.assert_fact(engine.ruleset_name, {"id": "x", "kind": "session_opened", "sid": "probe"})
    seen.append(engine.session_exists("probe"))
    _HOST.delete_state(engine.ruleset_name, "probe")
    assert seen == [False, True]


def test_rulesets_are_built_once_per_knowledge():
    assert RulesEngine(K).ruleset_name == ENGINE.rules.ruleset_name


def test_same_input_same_findings_in_the_same_order():
    data = stop_with([observation("8310-5", 39.1, "Cel", oid="t"),
                      observation("9269-2", 12, "{score}", oid="g"),
                      observation("8867-4", 130, "/min", oid="h")])
    runs = [ENGINE.assess("order-sign", {"patientId": "p1"}, data, NOW) for _ in range(5)]
    first = runs[0]
    for other in runs[1:]:
        assert [f.subject_id for f in other.findings] == [f.subject_id for f in first.findings]
        assert [[s.source_ref for s in f.severe_signs] for f in other.findings] == \
            [[s.source_ref for s in f.severe_signs] for f in first.findings]
        assert [{k: v for k, v in c.items() if k != "uuid"} for c in other.cards] == \
            [{k: v for k, v in c.items() if k != "uuid"} for c in first.cards]
    assert len({c["uuid"] for r in runs for c in r.cards}) == len(runs) * len(first.cards)


def test_concurrent_assessments_never_share_facts():
    """Fever for odd patients only: a leak would turn an even patient's card critical."""
    def assess(i):
        signs = [observation("8310-5", 39.4, "Cel", oid=f"t{i}")] if i % 2 else []
        data = stop_with(signs, pid=f"p{i}")
        return i, kinds(ENGINE.assess("order-sign", {"patientId": f"p{i}"}, data, NOW))

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
    assert ENGINE.assess("order-sign", {}, stop_with(days_ago=5), NOW).cards == []
    current = baclofen_request("mr1", dosages=[dosage(None)])
    data = PatientRecord([current], [dict(current, status="stopped")])
    (card,) = ENGINE.assess("order-sign", {}, data, NOW).cards
    assert "unknown dose" in card["summary"]
    assert "could not be determined" in card["detail"]


def test_finding_exposes_what_a_taper_planner_needs():
    (finding,) = ENGINE.assess("order-sign", {"patientId": "p1"}, stop_with(), NOW).findings
    assert finding.current_daily_dose == 30 and finding.dose_unit == "mg/d"
    assert finding.product.strength_mg == 10
    assert finding.administrations_per_day == 3
    assert finding.route == "oral" and finding.risk_level == "high"
    assert [f.key for f in finding.risk_factors] == ["long_exposure"]
    assert 119 < finding.exposure_days < 121
    assert finding.target_daily_dose == 0
    assert finding.draft_order_ref == "MedicationRequest/mr-p1"
    assert finding.draft_order["status"] == "stopped"
    assert finding.patient_ref == "Patient/p1"


def test_taper_seam_suggestions_are_attached(monkeypatch):
    suggestion = {"label": "Taper over 2 weeks", "actions": []}
    from cds.taper.proposal import TaperProposal

    monkeypatch.setattr("cds.taper.proposal.taper_proposal",
                        lambda finding, knowledge: TaperProposal(suggestions=[suggestion]))
    (card,) = ENGINE.assess("order-sign", {}, stop_with(), NOW).cards
    assert card["suggestions"] == [suggestion]
    assert card["selectionBehavior"] == "at-most-one"


def _oracle(fact, min_exposure):
    """The rules of rules/withdrawal_rules.py restated in Python, to check durable_rules."""
    severe, it_severe, early = (fact["severe_signs"], fact["intrathecal_severe_signs"],
                                fact["early_signs"])
    fired = set()
    if fact["kind"] == "event":
        if severe:
            fired.add("emergency_after_discontinuation")
        if fact["route"] == "intrathecal" and it_severe:
            fired.add("emergency_intrathecal_stop_hypotension")
        if fact["route"] == "oral" and not severe and (
                not fact["exposure_known"] or fact["exposure_days"] >= min_exposure):
            fired.add("supervised_taper")
        if fact["route"] == "intrathecal" and not severe and not it_severe:
            fired.add("intrathecal_stop_without_signs")
    elif not fact["has_intrathecal_event"]:
        if severe or it_severe:
            fired.add("emergency_intrathecal_course")
        elif early:
            fired.add("intrathecal_early_signs")
    return {(rule, fact["id"]) for rule in fired}


def test_many_random_sessions_match_the_rules_restated():
    """Thousands of sessions in one process: no crash, no leak between them, exact firings."""
    import random

    rnd = random.Random(7)
    engine = RulesEngine(K)
    min_exposure = K.threshold("min_exposure_days")
    for _ in range(3000):
        facts = [{
            "id": f"f{j}", "kind": rnd.choice(["event", "intrathecal_course"]),
            "type": "stop", "route": rnd.choice(["oral", "intrathecal"]),
            "dose_known": rnd.random() < 0.5, "exposure_known": rnd.random() < 0.8,
            "exposure_days": rnd.choice([0.0, 5.0, 14.0, 300.0]),
            "has_intrathecal_event": rnd.random() < 0.5,
            "severe_signs": rnd.choice([0, 0, 1]), "intrathecal_severe_signs": rnd.choice([0, 1]),
            "early_signs": rnd.choice([0, 2]),
        } for j in range(rnd.randint(0, 3))]
        expected = set().union(*[_oracle(f, min_exposure) for f in facts])
        assert {(f.rule, f.subject_id) for f in engine.run(facts)} == expected
