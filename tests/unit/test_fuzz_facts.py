"""Property tests: mutated and arbitrary FHIR never break fact extraction or the endpoint.

Seeds are the clinical fixtures (fhir_fixtures/), so mutations land on resources the
rules really read. Mutations: wrong types, missing fields, absurd units and values,
numbers as strings, huge arrays, deep nesting, unicode. Invariant: no exception and
no 5xx; a valid cards array, or a 4xx whose OperationOutcome says what is wrong.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds.app import create_app, load_clinical
from cds.config import Settings
from cds.facts.record import PatientRecord
from cds.facts.relevance import Relevance
from cds.fixtures import load_fixture
from cds.pipeline import check_record
from cds.resources import MODELS, flatten
from tests.support.openapi import check_response
from tests.support.paths import FIXTURES as FIXTURES_DIR

NOW = datetime.now(UTC).replace(microsecond=0)  # fixture dates are resolved against it
FIXTURES = FIXTURES_DIR

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)

# Values that real systems send where something else was expected.
ODD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, -0.0, 1e308, -1e308, 1e-308, 2**53 + 1, 10**18]),
    st.text(max_size=40),
    st.sampled_from([
        "", " ", "10", "10.0", "1e400", "-5", "NaN", "Infinity", "0x10", "１０", "½", "10 mg",
        "mg", "kg", "µg", "mcg", "mg/mg", "L", "tablet(s)", "{tbl}", "d", "wk", "mo", "a",
        "2030-02-30", "9999-12-31T23:59:59Z", "0001-01-01", "2024", "2024-13", "yesterday",
        "http://www.nlm.nih.gov/research/umls/rxnorm", "197391", "baclofen", "BACLOFEN ",
        "bäclofen", "バクロフェン", "\u202ebaclofen", "\x00", "\ud7ff", "😀" * 50, "a" * 5000,
    ]),
)
ODD_VALUES = st.one_of(
    ODD_SCALARS,
    st.lists(ODD_SCALARS, max_size=4),
    st.dictionaries(st.sampled_from(["value", "unit", "code", "system", "coding", "text", "x"]),
                    ODD_SCALARS, max_size=4),
)

# FHIR element names the fact extractors read, for arbitrary resources.
FIELD_NAMES = [
    "status", "intent", "code", "coding", "system", "display", "text", "valueQuantity", "value",
    "unit", "authoredOn", "effectiveDateTime", "issued", "dosageInstruction", "doseAndRate",
    "doseQuantity", "timing", "repeat", "frequency", "period", "periodUnit", "route",
    "medicationCodeableConcept", "medicationReference", "reference", "dispenseRequest",
    "validityPeriod", "start", "end", "category", "clinicalStatus", "subject", "id",
]


@pytest.fixture(scope="module")
def clinical():
    return load_clinical(Settings(auth_enabled=False))


@pytest.fixture(scope="module")
def seeds() -> list:
    return [load_fixture(path, NOW) for path in sorted(FIXTURES.glob("*.json"))]


@pytest.fixture(scope="module")
def client(clinical, tmp_path_factory):
    knowledge, engine = clinical
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", auth_enabled=False),
                     knowledge=knowledge, engine=engine, clock=lambda: NOW)
    return app.test_client()


def _slots(value: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in a JSON document, iteratively."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                out.append((node, key))
                stack.append(child)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                out.append((node, index))
                stack.append(child)
    return out


def _nest(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else {"extension": value}
    return value


def mutate(data: st.DataObject, document: Any, max_mutations: int = 4) -> list[str]:
    """Apply a few random mutations in place; returns what was done (for failure reports)."""
    done = []
    for _ in range(data.draw(st.integers(1, max_mutations), label="mutations")):
        slots = _slots(document, [])
        if not slots:
            break
        # Half the time aim at elements the fact extractors read, where a wrong shape
        # matters most; otherwise anywhere (envelope, ids, Bundle structure).
        read = [(c, k) for c, k in slots if isinstance(c, list) or k in FIELD_NAMES]
        aim = data.draw(st.integers(0, 3), label="aim") > 0  # 3 in 4
        pool = read if read and aim else slots
        container, key = pool[data.draw(st.integers(0, len(pool) - 1), label="slot")]
        current = container[key]
        operation = data.draw(st.sampled_from([
            "odd value", "odd value", "odd value", "delete", "number as string", "huge array",
            "deep nesting", "unicode", "absurd number",
        ]), label="operation")
        if operation == "delete" and isinstance(container, dict):
            del container[key]
        elif operation == "number as string" and isinstance(current, int | float):
            container[key] = data.draw(st.sampled_from([str(current), f" {current} ",
                                                        f"{current}e0", f"{current:,}"]))
        elif operation == "huge array":
            container[key] = [copy.deepcopy(current)] * data.draw(st.integers(100, 2000))
        elif operation == "deep nesting":
            container[key] = _nest(current, data.draw(st.integers(10, 300)))
        elif operation == "unicode":
            container[key] = data.draw(st.text(min_size=1, max_size=60))
        elif operation == "absurd number":
            container[key] = data.draw(st.sampled_from([1e308, -1e308, 0, -1, 10**15, 1e-300]))
        else:
            container[key] = data.draw(ODD_VALUES, label="value")
        done.append(f"{operation} at {key!r}")
    return done


_RELEVANCE: dict[int, Relevance] = {}


def _relevance(knowledge) -> Relevance:
    return _RELEVANCE.setdefault(id(knowledge), Relevance(knowledge))


def assess(clinical, request: dict, hook: str):
    """The pipeline's path from request to cards, without HTTP."""
    knowledge, engine = clinical
    prefetch = request.get("prefetch")
    values = prefetch.values() if isinstance(prefetch, dict) else []
    resources = [r for value in values for r in flatten(value)]
    context = request.get("context")
    drafts = flatten(context.get("draftOrders")) if isinstance(context, dict) else []
    checked, checked_drafts = check_record(_relevance(knowledge), resources, drafts, NOW)
    data = PatientRecord(resources=checked.resources, draft_orders=checked_drafts.resources)
    return engine.assess(hook, context if isinstance(context, dict) else {}, data, NOW)


def assert_valid_cards(cards: list) -> None:
    check_response("POST", "/cds-services/baclofen-order-sign", 200, {"cards": cards})


@FUZZ
@given(data=st.data())
def test_mutated_fixtures_never_break_fact_extraction(clinical, seeds, data):
    fixture = data.draw(st.sampled_from(seeds), label="fixture")
    request = copy.deepcopy(fixture.request)
    hook = request["hook"]
    mutate(data, request)
    assert_valid_cards(assess(clinical, request, hook).cards)


# Elements whose value decides a fact: codes, quantities, timing, status, dates.
DECISIVE = {"code", "coding", "system", "value", "unit", "valueQuantity", "doseQuantity",
            "frequency", "period", "periodUnit", "status", "authoredOn", "effectiveDateTime",
            "medicationCodeableConcept", "dosageInstruction", "doseAndRate", "timing", "repeat"}

WRONG_TYPES = st.one_of(
    st.lists(st.sampled_from(["197391", 10, None]), max_size=2),
    st.fixed_dictionaries({"code": st.sampled_from(["197391", "x"])}),
    st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.booleans(), st.none(),
    st.text(max_size=8),
)


def swap_type_in_one_resource(data: st.DataObject, request: dict) -> str | None:
    """Give one element of one prefetch resource a value of another JSON type."""
    prefetch = request.get("prefetch") or {}
    resources = [r for value in prefetch.values() for r in flatten(value)]
    context = request.get("context") or {}
    resources += flatten(context.get("draftOrders"))
    if not resources:
        return None
    resource = data.draw(st.sampled_from(resources), label="resource")
    slots = [(c, k) for c, k in _slots(resource, []) if k != "resourceType"]
    decisive = [(c, k) for c, k in slots if k in DECISIVE]
    if data.draw(st.booleans(), label="decisive") and decisive:
        slots = decisive
    if not slots:
        return None
    container, key = data.draw(st.sampled_from(slots), label="slot")
    before = type(container[key])
    container[key] = data.draw(WRONG_TYPES.filter(lambda v: type(v) is not before))
    return f"{resource.get('resourceType')}: {key!r} was {before.__name__}"


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_one_wrong_type_in_a_resource_never_breaks_fact_extraction(clinical, seeds, data):
    """Targeted: one element of one resource changes JSON type (a code that is a list,
    a coding that is a number). The relevance filter and the extractors read raw JSON
    before and after the model check, so every element is fair game."""
    fixture = data.draw(st.sampled_from(seeds), label="fixture")
    request = copy.deepcopy(fixture.request)
    swap_type_in_one_resource(data, request)
    assert_valid_cards(assess(clinical, request, request["hook"]).cards)


SWAPS = (["197391"], {"code": "197391"}, 12.5, "12.5", None)


def richest(seeds: list, count: int) -> list:
    def size(fixture) -> int:
        prefetch = fixture.request.get("prefetch") or {}
        drafts = flatten((fixture.request.get("context") or {}).get("draftOrders"))
        return sum(len(flatten(v)) for v in prefetch.values()) + len(drafts)

    return sorted(seeds, key=size, reverse=True)[:count]


def test_every_decisive_element_with_a_wrong_type(clinical, seeds):
    """Exhaustive where random search is thin: every decisive element of every resource
    in the richest fixtures, given each of a few wrong JSON types in turn."""
    tried = 0
    for fixture in richest(seeds, 3):
        template = fixture.request
        count = len(_slots(template, []))
        for index in range(count):
            container, key = _slots(template, [])[index]
            if key not in DECISIVE:
                continue
            for swap in SWAPS:
                request = copy.deepcopy(template)
                container, key = _slots(request, [])[index]
                if type(container[key]) is type(swap):
                    continue
                container[key] = copy.deepcopy(swap)
                assert_valid_cards(assess(clinical, request, request["hook"]).cards)
                tried += 1
    assert tried > 100


@FUZZ
@given(data=st.data())
def test_nan_and_infinity_never_break_fact_extraction(clinical, seeds, data):
    """Not valid JSON, so not from HTTP, but possible from a Python caller of the engine."""
    fixture = data.draw(st.sampled_from(seeds), label="fixture")
    request = copy.deepcopy(fixture.request)
    numbers = [(c, k) for c, k in _slots(request, []) if isinstance(c[k], int | float)
               and not isinstance(c[k], bool)]
    for container, key in numbers:
        container[key] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf, 0.0]))
    assert_valid_cards(assess(clinical, request, request["hook"]).cards)


def arbitrary_resource() -> st.SearchStrategy[dict]:
    json_values = st.recursive(
        ODD_SCALARS,
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=4),
        max_leaves=20,
    )
    return st.builds(
        lambda kind, fields: {**fields, "resourceType": kind},
        st.sampled_from(sorted(MODELS)),
        st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8),
    )


@FUZZ
@given(resources=st.lists(arbitrary_resource(), max_size=6),
       drafts=st.lists(arbitrary_resource(), max_size=3),
       hook=st.sampled_from(["order-select", "order-sign", "patient-view", "encounter-start",
                             "encounter-discharge"]))
def test_arbitrary_resources_never_break_fact_extraction(clinical, resources, drafts, hook):
    request = {
        "hook": hook,
        "context": {"patientId": "p1", "userId": "Practitioner/1", "encounterId": "e1",
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": d} for d in drafts]}},
        "prefetch": {"all": {"resourceType": "Bundle", "type": "searchset",
                             "entry": [{"resource": r} for r in resources]}},
    }
    assert_valid_cards(assess(clinical, request, hook).cards)


def check_answer(response, path: str) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    body = response.get_json()
    check_response("POST", path, response.status_code, body)
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        message = body["issue"][0]["diagnostics"]
        assert isinstance(message, str) and len(message) > 10


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_mutated_requests_get_cards_or_a_clear_4xx(client, seeds, data):
    fixture = data.draw(st.sampled_from(seeds), label="fixture")
    request = copy.deepcopy(fixture.request)
    mutate(data, request)
    path = f"/cds-services/{fixture.service}"
    check_answer(client.post(path, json=request), path)


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_mutated_feedback_is_stored_or_a_clear_4xx(client, data):
    document = {"feedback": [{
        "card": "6c5e3c1e-5a0b-4a55-9d0c-3f0a8f8f0a11", "outcome": "overridden",
        "outcomeTimestamp": NOW.isoformat(),
        "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "taper",
                                      "display": "Taper already planned"},
                           "userComment": "ok"},
    }]}
    mutate(data, document, max_mutations=3)
    path = "/cds-services/baclofen-order-sign/feedback"
    response = client.post(path, json=document)
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert len(response.get_json()["issue"][0]["diagnostics"]) > 10
