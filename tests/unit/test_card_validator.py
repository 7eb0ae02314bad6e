"""The spec checker used on every fixture's response must itself catch violations."""

from tests.support.cards import response_problems

GOOD = {
    "uuid": "u", "summary": "s", "indicator": "warning",
    "source": {"label": "l", "url": "https://example.org", "topic": {
        "system": "https://example.org/topics", "code": "c"}},
    "selectionBehavior": "at-most-one",
    "suggestions": [{"label": "x", "uuid": "s1", "isRecommended": True, "actions": [
        {"type": "delete", "description": "d", "resourceId": "MedicationRequest/1"},
        {"type": "create", "description": "c", "resource": {"resourceType": "MedicationRequest"}},
    ]}],
    "overrideReasons": [{"system": "https://example.org/r", "code": "r", "display": "R"}],
    "links": [{"label": "label", "url": "https://example.org/x", "type": "absolute"}],
}


def test_a_good_card_passes():
    assert response_problems({"cards": [GOOD]}) == []
    assert response_problems({"cards": []}) == []


def test_each_violation_is_caught():
    cases = {
        "summary": {**GOOD, "summary": "x" * 140},
        "indicator": {**GOOD, "indicator": "hard-stop"},
        "selectionBehavior": {k: v for k, v in GOOD.items() if k != "selectionBehavior"},
        "display": {**GOOD, "overrideReasons": [{"system": "s", "code": "c"}]},
        "appContext": {**GOOD, "links": [{**GOOD["links"][0], "appContext": "{}"}]},
        "req 3": {**GOOD, "links": []},
        "req 133": {**GOOD, "suggestions": [{"label": "x", "actions": [
            {"type": "delete", "description": "d", "resource": {"resourceType": "X"}}]}]},
        "absolute": {**GOOD, "source": {"label": "l", "url": "/relative"}},
        "req 80": {**GOOD, "uuid": 17},
        "req 117": {**GOOD, "suggestions": [{"label": 3}]},
        "req 121": {**GOOD, "suggestions": [{"label": "x", "isRecommended": "yes"}]},
        "req 138": {**GOOD, "links": [{"url": "https://e.org", "type": "absolute"}]},
        "req 139": {**GOOD, "links": [{"label": "l", "url": "e.org/x", "type": "absolute"}]},
        "req 141/142": {**GOOD, "links": [{"label": "l", "url": "https://e.org", "type": "x"}]},
        "req 217": {**GOOD, "source": {"label": "l", "topic": {"code": "c"}}},
        "req 216/218": {**GOOD, "source": {"label": "l", "topic": {"system": "s"}}},
        "req 90/105": {k: v for k, v in GOOD.items() if k != "source"},
    }
    for needle, card in cases.items():
        problems = response_problems({"cards": [card]})
        assert any(needle in p for p in problems), (needle, problems)


def test_extension_form_is_checked():
    assert any("214/215" in p for p in response_problems(
        {"cards": [], "extension": {"nodots": {"a": 1}}}))
    assert any("214/215" in p for p in response_problems(
        {"cards": [], "extension": {"org.example": "not an object"}}))
