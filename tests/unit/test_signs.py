"""Signs (cds.facts.signs) as rules/signs.yaml defines them: every sign from an Observation
and from a Condition, units, measuring sites, panels, supersedes, statuses and times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pytest

from cds.facts.signs import CLOCK_SKEW, SignFinder
from cds.facts.units import convert, number, quantity
from cds.knowledge import load_knowledge
from cds.knowledge.model import Reading
from tests.clinical_builders import (
    LOINC,
    NOW,
    ago,
    bp_panel,
    coding,
    concept,
    condition,
    drop_keys,
    observation,
    text_condition,
    verification,
)

K = load_knowledge()
FINDER = SignFinder(K)
T = K.threshold


def keys(resources: Iterable[dict], now: datetime = NOW) -> list[str]:
    return [s.key for s in FINDER.find(list(resources), now)]


def _beyond(reading: Reading) -> float:
    """A value just past the reading's threshold, in the reading's unit."""
    step = 1 if reading.compare in (">", ">=") else -1
    margin = 0 if reading.compare in (">=", "<=") else 1
    return reading.value + step * margin


SIGN_READINGS = [(key, r) for key, s in K.signs.items() for r in s.readings]
SIGN_CODES = [(key, c) for key, s in K.signs.items() if s.recorded_as
              for c in s.recorded_as.codes]
SIGN_WORDS = [(key, s.recorded_as.words[0]) for key, s in K.signs.items()
              if s.recorded_as and s.recorded_as.words]
SUPERSEDED = {other for s in K.signs.values() for other in s.supersedes}


# ---------------------------------------------------------------- every sign


@pytest.mark.parametrize(("key", "reading"), SIGN_READINGS, ids=[k for k, _ in SIGN_READINGS])
def test_every_sign_from_an_observation(key: str, reading: Reading) -> None:
    code = reading.code_set.codes[0]
    obs = observation(code.code, _beyond(reading), reading.unit)
    assert key in keys([obs])


@pytest.mark.parametrize(("key", "reading"), SIGN_READINGS, ids=[k for k, _ in SIGN_READINGS])
def test_every_reading_inside_its_threshold_is_no_sign(key: str, reading: Reading) -> None:
    code = reading.code_set.codes[0]
    inside = reading.value - (1 if reading.compare in (">", ">=") else -1)
    assert key not in keys([observation(code.code, inside, reading.unit)])


@pytest.mark.parametrize(("key", "code"), SIGN_CODES, ids=[f"{k}-{c.code}" for k, c in SIGN_CODES])
def test_every_sign_from_a_coded_condition(key: str, code) -> None:
    child = code.code + ("A" if "." in code.code else ".9")  # a code of the family
    cond = condition(code.system, child if code.prefix else code.code, code.display, days_ago=1)
    found = keys([cond])
    assert key in found or (found and key in SUPERSEDED)


@pytest.mark.parametrize(("key", "word"), SIGN_WORDS, ids=[k for k, _ in SIGN_WORDS])
def test_every_sign_from_a_condition_in_words(key: str, word: str) -> None:
    assert key in keys([text_condition(f"New {word.upper()} today")])


def test_every_sign_can_be_found_one_way_or_another() -> None:
    found = {k for k, _ in SIGN_READINGS} | {k for k, _ in SIGN_CODES} | {k for k, _ in
                                                                        SIGN_WORDS}
    assert found == set(K.signs)


# ---------------------------------------------------------------- temperatures


@pytest.mark.parametrize(("value", "unit"), [
    (38.0, "Cel"), (100.4, "[degF]"), (101, "°F"), (38.5, "°C"), (311.65, "K"),
    (39, "degC"), (102.2, "degF"),
])
def test_fever_in_every_temperature_unit(value: float, unit: str) -> None:
    assert keys([observation("8310-5", value, unit)]) == ["fever"]


@pytest.mark.parametrize(("value", "unit"), [(37.9, "Cel"), (100.2, "[degF]"), (99.0, "°F")])
def test_no_fever_just_below(value: float, unit: str) -> None:
    assert keys([observation("8310-5", value, unit)]) == []


def test_fahrenheit_is_shown_converted() -> None:
    (sign,) = FINDER.find([observation("8310-5", 102.2, "[degF]")], NOW)
    assert "39 °C" in sign.evidence and sign.source_ref == "Observation/o1"


def test_hypothermia_in_fahrenheit() -> None:
    assert keys([observation("8310-5", 93.2, "[degF]")]) == ["hypothermia"]


@pytest.mark.parametrize("code", [c.code for c in K.code_sets["body_temperature"].codes])
def test_every_measuring_site_counts(code: str) -> None:
    assert keys([observation(code, 39.2, "Cel")]) == ["fever"]


@pytest.mark.parametrize("unit", ["", "mmol/L", "furlong"])
def test_temperature_in_no_or_a_wrong_unit_is_never_taken(unit: str) -> None:
    assert keys([observation("8310-5", 39.5, unit)]) == []


def test_unitless_heart_rate_is_read_in_its_only_unit() -> None:
    assert keys([observation("8867-4", 130, "")]) == ["marked_tachycardia"]


@pytest.mark.parametrize("unit", ["/min", "{beats}/min", "beats/min", "bpm"])
def test_heart_rate_unit_spellings(unit: str) -> None:
    assert keys([observation("8867-4", 45, unit)]) == ["bradycardia"]


# ---------------------------------------------------------------- panels and supersedes


@pytest.mark.parametrize("panel", [c.code for c in K.code_sets["bp_panel"].codes])
def test_systolic_from_a_blood_pressure_panel(panel: str) -> None:
    assert keys([bp_panel(82, panel=panel)]) == ["hypotension"]
    assert keys([bp_panel(172, panel=panel, oid="hi")]) == ["raised_blood_pressure"]
    assert keys([bp_panel(120, panel=panel, oid="ok")]) == []


def test_diastolic_alone_is_not_read_as_systolic() -> None:
    panel = bp_panel(120, diastolic=40)
    assert keys([panel]) == []


def test_marked_tachycardia_supersedes_tachycardia() -> None:
    assert keys([observation("8867-4", 135, "/min")]) == ["marked_tachycardia"]
    assert keys([observation("8867-4", 105, "/min")]) == ["tachycardia"]
    assert keys([observation("8867-4", T("tachycardia_bpm"), "/min")]) == []


def test_depressed_consciousness_supersedes_altered_mental_status() -> None:
    assert keys([observation("9269-2", 8, "{score}")]) == ["depressed_consciousness"]
    assert keys([observation("9269-2", 14, "{score}")]) == ["altered_mental_status"]
    assert keys([observation("9269-2", 15, "{score}")]) == []


def test_supersedes_works_within_one_condition() -> None:
    both = condition(LOINC, "x", days_ago=1)
    both["code"] = concept(text="tachycardia; somnolent and confused")
    found = keys([both])
    assert "depressed_consciousness" in found and "altered_mental_status" not in found


def test_readings_of_separate_resources_do_not_supersede_each_other() -> None:
    found = keys([observation("9269-2", 8, "{score}"),
                  condition(LOINC, "x", days_ago=1, cid="c") | {"code": concept(
                      text="confusion")}])
    assert sorted(found) == ["altered_mental_status", "depressed_consciousness"]


# ---------------------------------------------------------------- severity and direction


def test_hypotension_is_early_by_mouth_and_severe_with_a_pump() -> None:
    (sign,) = FINDER.find([observation("8480-6", 80, "mm[Hg]")], NOW)
    assert sign.severity(K, "oral") == "early" and sign.severity(K, "intrathecal") == "severe"


@pytest.mark.parametrize(("key", "direction"), [
    ("fever", "withdrawal"), ("respiratory_depression", "toxicity"), ("seizure", "either"),
    ("bradycardia", "toxicity"), ("pruritus", "withdrawal"), ("hypoxaemia", "either"),
])
def test_direction_comes_from_the_rules(key: str, direction: str) -> None:
    assert K.signs[key].points_to == direction


# ---------------------------------------------------------------- statuses and times


def test_refuted_and_entered_in_error_conditions_are_ignored() -> None:
    seizure = condition(LOINC, "x", days_ago=1) | {"code": concept(text="seizure")}
    assert keys([verification(seizure, "refuted")]) == []
    assert keys([verification(seizure, "entered-in-error")]) == []
    assert keys([verification(seizure, "confirmed")]) == ["seizure"]


def test_resolved_condition_of_the_window_still_happened() -> None:
    seizure = condition(LOINC, "x", days_ago=1) | {
        "code": concept(text="seizure"),
        "clinicalStatus": concept(coding(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved"))}
    assert keys([seizure]) == ["seizure"]


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "unknown", None])
def test_unusable_observation_statuses_are_ignored(status: str | None) -> None:
    obs = observation("8310-5", 39.5, "Cel") | {"status": status}
    assert keys([obs]) == []


@pytest.mark.parametrize("status", ["final", "amended", "corrected", "preliminary"])
def test_usable_observation_statuses(status: str) -> None:
    assert keys([observation("8310-5", 39.5, "Cel") | {"status": status}]) == ["fever"]


def test_future_readings_are_ignored_beyond_clock_skew() -> None:
    skew_hours = CLOCK_SKEW.total_seconds() / 3600
    assert keys([observation("8310-5", 39.5, "Cel", hours_ago=-1)]) == []
    assert keys([observation("8310-5", 39.5, "Cel", hours_ago=-skew_hours / 2)]) == ["fever"]


def test_future_conditions_are_ignored() -> None:
    future = condition(LOINC, "x", days_ago=-1) | {"code": concept(text="seizure")}
    assert keys([future]) == []


def test_undated_condition_is_ignored_but_a_recorded_date_counts() -> None:
    seizure = drop_keys(condition(LOINC, "x") | {"code": concept(text="seizure")},
                        "onsetDateTime")
    assert keys([seizure]) == []
    assert keys([seizure | {"recordedDate": ago(1)}]) == ["seizure"]


@pytest.mark.parametrize("when", [
    {"effectivePeriod": {"start": ago(hours=2)}}, {"effectiveInstant": ago(hours=2)},
    {"issued": ago(hours=2)},
])
def test_observation_times_other_than_effective_date_time(when: dict) -> None:
    obs = drop_keys(observation("8310-5", 39.5, "Cel"), "effectiveDateTime") | when
    assert keys([obs]) == ["fever"]


def test_code_needs_its_system() -> None:
    obs = observation("8310-5", 39.5, "Cel")
    obs["code"] = concept(coding("http://example.org/local", "8310-5"))
    assert keys([obs]) == []


def test_signs_are_sorted_oldest_first() -> None:
    found = FINDER.find([observation("8310-5", 39.5, "Cel", hours_ago=1, oid="new"),
                         observation("8867-4", 130, "/min", hours_ago=5, oid="old")], NOW)
    assert [s.source_ref for s in found] == ["Observation/old", "Observation/new"]


@pytest.mark.parametrize("junk", [
    "garbage", None, {"resourceType": "Observation", "status": "final", "code": "x"},
    {"resourceType": "Observation", "status": "final",
     "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
     "effectiveDateTime": "yesterday", "valueQuantity": {"value": 40, "code": "Cel"}},
    {"resourceType": "Observation", "status": "final", "effectiveDateTime": ago(hours=1),
     "code": {"coding": [{"system": LOINC, "code": "85354-9"}]}, "component": [None, 3]},
    {"resourceType": "Condition", "code": {"text": 7}, "onsetDateTime": ago(1)},
    {"resourceType": "Observation", "status": "final", "effectiveDateTime": ago(hours=1),
     "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
     "valueQuantity": {"value": "39.5", "code": "Cel"}},
])
def test_malformed_resources_are_skipped(junk: object) -> None:
    assert keys([junk, observation("8310-5", 39.5, "Cel")]) == ["fever"]


# ---------------------------------------------------------------- units (cds.facts.units)


@pytest.mark.parametrize(("value", "expected"), [
    (5, 5.0), (5.5, 5.5), (True, None), (float("nan"), None), (float("inf"), None),
    ("5", None), (None, None),
])
def test_number_accepts_only_finite_reals(value: object, expected: float | None) -> None:
    assert number(value) == expected


def test_quantity_prefers_the_ucum_code() -> None:
    assert quantity({"valueQuantity": {"value": 38, "unit": "deg C", "code": "Cel"}}) == (
        38.0, "Cel")
    assert quantity({"valueQuantity": {"value": 38, "unit": "deg C"}}) == (38.0, "deg C")
    assert quantity({"valueQuantity": "38 C"}) == (None, None)


@pytest.mark.parametrize(("value", "unit", "target", "code_set", "expected"), [
    (212, "[degF]", "Cel", None, 100), (0, "K", "Cel", None, -273.15),
    (38, "celsius", "Cel", None, 38), (120, "", "/min", None, 120), (38, "", "Cel", None, None),
    (88.4, "umol/L", "mg/dL", "creatinine_molar", 1.0),
    (88.4, "umol/L", "mg/dL", "egfr", None), (5, "furlong", "Cel", None, None),
    (None, "Cel", "Cel", None, None),
])
def test_convert(value: float | None, unit: str, target: str, code_set: str | None,
                 expected: float | None) -> None:
    converted = convert(value, unit, target, K, code_set)
    assert converted == (pytest.approx(expected, abs=1e-3) if expected is not None else None)
