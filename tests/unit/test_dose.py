"""Daily dose of one order (cds.facts.dose): units, frequencies, sigs, as-needed maxima,
liquids, intrathecal rates and single doses. Unknown is unknown, never guessed."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts.dose import DailyDose, DoseReader, duration_days
from cds.facts.orders import OrderReader
from cds.facts.record import PatientRecord
from cds.knowledge import load_knowledge
from cds.product import Product
from tests.clinical_builders import (
    RXNORM,
    TIMING,
    baclofen_request,
    coding,
    concept,
    dosage,
    ingredient,
    medication,
    quantity,
    rate_dosage,
    request_with,
    sig_dosage,
)

K = load_knowledge()
DOSES = DoseReader(K)

TABLET_10 = Product("baclofen 10 mg tablet", "tablet", "oral", strength_mg=10)
SOLUTION_1 = Product("baclofen 1 mg/mL", "solution", "oral", concentration_mg_per_ml=1)
SUSPENSION_5 = Product("baclofen 5 mg/mL", "suspension", "oral", concentration_mg_per_ml=5)
LIQUID_UNKNOWN = Product("baclofen oral solution", "solution", "oral")
PUMP_2000 = Product("baclofen 2000 mcg/mL", "injection", "intrathecal",
                    concentration_mg_per_ml=2)
PUMP_UNKNOWN = Product("baclofen intrathecal", "injection", "intrathecal")


def dose_of(dosages: Any, product: Product = TABLET_10) -> DailyDose:
    return DOSES.daily_dose({"dosageInstruction": dosages}, product)


def order_dose(resource: dict, *medications: dict) -> DailyDose:
    """The dose as the service reads a whole order (recognition, then dose)."""
    (order,) = OrderReader(K).orders(PatientRecord([resource, *medications], []), False)
    return order.dose


# ---------------------------------------------------------------- structured doses


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (10, "mg", 30), (10000, "ug", 30), (10000, "mcg", 30), (0.01, "g", 30),
])
def test_mass_units_three_times_a_day(value: float, unit: str, expected: float) -> None:
    read = dose_of([dosage(value, unit)])
    assert read.scheduled == pytest.approx(expected)
    assert read.unit == "mg/d" and read.administrations_per_day == 3


@pytest.mark.parametrize("unit", ["{pill}", "{tbl}", "TAB", "tab", "Tablet", "tablet(s)",
                                  "tablets", "{tab}", "{tablet}", "tbl", "pill", "caplet",
                                  "each"])
def test_solid_units_count_tablets_of_the_product_strength(unit: str) -> None:
    assert dose_of([dosage(2, unit)]).scheduled == 60


def test_tablets_without_a_known_strength_are_unknown() -> None:
    read = dose_of([dosage(2, "{tbl}")], Product("baclofen", "tablet", "oral"))
    assert not read.known and read.unknown_reason


@pytest.mark.parametrize(("product", "ml", "expected"), [
    (SOLUTION_1, 10, 30), (SUSPENSION_5, 2, 30), (SUSPENSION_5, 10, 150),
])
def test_liquids_use_the_product_concentration(product: Product, ml: float, expected: float
                                               ) -> None:
    assert dose_of([dosage(ml, "mL")], product).scheduled == pytest.approx(expected)


def test_liquid_of_unknown_concentration_is_unknown_not_assumed() -> None:
    read = dose_of([dosage(10, "mL")], LIQUID_UNKNOWN)
    assert not read.known and "mg" in read.unknown_reason


def test_liquid_concentration_from_a_contained_medication_strength() -> None:
    request = request_with(None, dosages=[dosage(5, "mL")],
                           medicationReference={"reference": "#liquid"},
                           contained=[medication("liquid", concept(text="baclofen suspension"),
                                                 ingredients=[ingredient(
                                                     concept(text="baclofen"), 25, "mg", 5)])])
    assert order_dose(request).scheduled == pytest.approx(75)  # 5 mL x 5 mg/mL x 3


def test_liquid_concentration_from_a_referenced_medication_strength() -> None:
    request = request_with(None, dosages=[dosage(10, "mL")],
                           medicationReference={"reference": "Medication/ozobax"})
    ozobax = medication("ozobax", concept(text="Baclofen oral solution"), form="oral solution",
                        ingredients=[ingredient(concept(text="baclofen"), 5, "mg", 5)])
    assert order_dose(request, ozobax).scheduled == pytest.approx(30)


@pytest.mark.parametrize(("rxcui", "ml", "expected"), [
    ("250976", 10, 30), ("2667941", 5, 30), ("2593376", 2, 30),
])
def test_liquid_products_by_code(rxcui: str, ml: float, expected: float) -> None:
    assert order_dose(baclofen_request(rxcui=rxcui, dosages=[dosage(ml, "mL")])).scheduled \
        == pytest.approx(expected)


def test_several_instructions_of_one_step_are_summed() -> None:
    read = dose_of([dosage(20, "mg", frequency=1), dosage(10, "mg", frequency=2)])
    assert read.scheduled == 40 and read.administrations_per_day == 3


def test_dose_range_counts_at_its_high_end() -> None:
    d = dosage(None)
    d["doseAndRate"] = [{"doseRange": {"low": quantity(5, "mg"), "high": quantity(10, "mg")}}]
    assert dose_of([d]).scheduled == 30


# ---------------------------------------------------------------- frequencies


@pytest.mark.parametrize(("timing", "per_day"), [
    ({"code": {"coding": [{"system": TIMING, "code": "BID"}]}}, 2),
    ({"code": {"coding": [{"system": TIMING, "code": "TID"}]}}, 3),
    ({"code": {"coding": [{"system": TIMING, "code": "QID"}]}}, 4),
    ({"code": {"coding": [{"system": TIMING, "code": "Q8H"}]}}, 3),
    ({"code": {"coding": [{"system": TIMING, "code": "Q6H"}]}}, 4),
    ({"code": {"coding": [{"system": TIMING, "code": "Q4H"}]}}, 6),
    ({"code": {"coding": [{"system": TIMING, "code": "QD"}]}}, 1),
    ({"code": {"coding": [{"system": TIMING, "code": "QOD"}]}}, 0.5),
    ({"code": {"text": "twice daily"}}, 2),
    ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, 3),
    ({"repeat": {"frequency": 2, "frequencyMax": 3, "period": 1, "periodUnit": "d"}}, 3),
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, 1 / 7),
    ({"repeat": {"when": ["MORN", "NIGHT"]}}, 2),
    ({"repeat": {"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}}, 3),
])
def test_administrations_per_day(timing: dict, per_day: float) -> None:
    assert DOSES.administrations_per_day(timing) == pytest.approx(per_day)


@pytest.mark.parametrize("timing", [None, "TID", {}, {"repeat": {"frequency": 0, "period": 1,
                                                                 "periodUnit": "d"}},
                                    {"repeat": {"frequency": 3, "period": 1,
                                                "periodUnit": "fortnight"}},
                                    {"code": {"coding": [{"code": "SOMETIMES"}]}}])
def test_unreadable_timing_is_unknown(timing: Any) -> None:
    assert DOSES.administrations_per_day(timing) is None


# ---------------------------------------------------------------- sig fallback


@pytest.mark.parametrize(("text", "expected"), [
    ("1 tab PO TID", 30), ("15 mg four times daily", 60), ("2 tablets by mouth twice daily", 40),
    ("10 mg PO Q8H", 30), ("half tab bid", 10),
])
def test_free_text_sig_when_the_structure_is_missing(text: str, expected: float) -> None:
    read = dose_of([sig_dosage(text)])
    assert read.scheduled == pytest.approx(expected)
    assert read.from_sig


def test_liquid_sig_uses_the_concentration() -> None:
    assert dose_of([sig_dosage("5 mL by mouth three times daily")], SOLUTION_1).scheduled == 15


def test_structured_timing_with_the_amount_in_the_sig() -> None:
    d = {"text": "10 mg", "timing": {"code": {"coding": [{"system": TIMING, "code": "TID"}]}}}
    read = dose_of([d])
    assert read.scheduled == 30 and read.from_sig


def test_structure_wins_over_the_sig() -> None:
    d = dosage(20, "mg", frequency=4, text="10 mg three times daily")
    read = dose_of([d])
    assert read.scheduled == 80 and not read.from_sig


def test_sig_fallback_on_a_real_order() -> None:
    request = baclofen_request(dosages=[sig_dosage("20 mg by mouth four times a day")])
    assert order_dose(request).scheduled == 80


@pytest.mark.parametrize("text", ["take as directed", "10 mg", "three times daily"])
def test_incomplete_sig_is_unknown(text: str) -> None:
    read = dose_of([sig_dosage(text)])
    assert not read.known and read.unknown_reason


# ---------------------------------------------------------------- as needed


def _prn(dose: float = 5, **extra: Any) -> dict:
    return dosage(dose, "mg", frequency=3, asNeededBoolean=True, **extra)


def test_as_needed_is_no_daily_dose_but_keeps_its_maximum_per_period() -> None:
    cap = {"numerator": quantity(15, "mg"), "denominator": quantity(1, "d")}
    read = dose_of([_prn(maxDosePerPeriod=cap)])
    assert read.scheduled == 0 and read.as_needed and read.as_needed_only
    assert read.as_needed_max == 15


@pytest.mark.parametrize(("numerator", "denominator", "per_day"), [
    (quantity(30, "mg"), quantity(24, "h"), 30),
    (quantity(3, "tablet", "{tbl}"), quantity(1, "d"), 30),
    (quantity(60, "mg"), quantity(2, "d"), 30),
])
def test_max_dose_per_period_in_other_units(numerator: dict, denominator: dict,
                                            per_day: float) -> None:
    read = dose_of([_prn(maxDosePerPeriod={"numerator": numerator,
                                           "denominator": denominator})])
    assert read.as_needed_max == pytest.approx(per_day)


def test_as_needed_without_a_maximum_counts_dose_times_frequency() -> None:
    assert dose_of([_prn(5)]).as_needed_max == 15


def test_as_needed_codeable_concept() -> None:
    d = dosage(10, "mg", frequency=2, asNeededCodeableConcept={"text": "muscle spasm"})
    read = dose_of([d])
    assert read.as_needed_only and read.as_needed_max == 20


def test_as_needed_sig_with_a_stated_maximum() -> None:
    read = dose_of([sig_dosage("5 mg every 8 hours as needed, max 15 mg/day")])
    assert read.as_needed_only and read.as_needed_max == 15 and read.from_sig


def test_scheduled_plus_as_needed_keeps_both() -> None:
    read = dose_of([dosage(10, "mg"), dosage(5, "mg", frequency=1, asNeededBoolean=True)])
    assert read.scheduled == 30 and read.as_needed and not read.as_needed_only
    assert read.as_needed_max == 5


# ---------------------------------------------------------------- intrathecal


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (400, "ug/d", 400), (400, "mcg/d", 400), (400, "mcg/day", 400), (20, "ug/h", 480),
    (20, "mcg/h", 480), (0.3, "mg/d", 300), (0.25, "mL/d", 500),
])
def test_intrathecal_rate_in_mcg_per_day(value: float, unit: str, expected: float) -> None:
    read = dose_of([rate_dosage(value, unit)], PUMP_2000)
    assert read.scheduled == pytest.approx(expected) and read.unit == "ug/d"


def test_intrathecal_rate_ratio() -> None:
    rate = {"rateRatio": {"numerator": quantity(600, "ug"), "denominator": quantity(1, "d")}}
    assert dose_of([{"doseAndRate": [rate]}], PUMP_2000).scheduled == 600


def test_intrathecal_volume_rate_of_unknown_concentration_is_unknown() -> None:
    assert not dose_of([rate_dosage(0.25, "mL/d")], PUMP_UNKNOWN).known


def test_intrathecal_order_read_whole() -> None:
    request = baclofen_request(rxcui="1666613", dosages=[rate_dosage(350)])
    read = order_dose(request)
    assert read.scheduled == 350 and read.unit == "ug/d"


@pytest.mark.parametrize("text", ["400 mcg/day continuous", "250 mcg per day"])
def test_intrathecal_rate_from_the_sig(text: str) -> None:
    assert dose_of([sig_dosage(text)], PUMP_2000).scheduled == pytest.approx(
        float(text.split()[0]))


# ---------------------------------------------------------------- single doses and schedules


@pytest.mark.parametrize("dosages", [
    [{"doseAndRate": [{"doseQuantity": quantity(50, "ug")}], "timing": {"repeat": {"count": 1}}}],
    [sig_dosage("50 mcg intrathecal bolus x1")],
    [sig_dosage("50 mcg test dose")],
    [sig_dosage("screening dose 50 mcg")],
])
def test_single_intrathecal_doses(dosages: list) -> None:
    assert dose_of(dosages, PUMP_2000).single_dose


@pytest.mark.parametrize("text", ["10 mg PO once only", "10 mg stat", "10 mg one time"])
def test_single_oral_doses(text: str) -> None:
    assert dose_of([sig_dosage(text)]).single_dose


@pytest.mark.parametrize("text", ["10 mg three times daily x 1 week", "5 mg at night x1 day",
                                  "10 mg one time daily", "10 mg PO tid x 1 month"])
def test_a_duration_or_frequency_after_x1_is_a_course_not_a_single_dose(text: str) -> None:
    """Issue 22 probe 7-40: "x 1 week" steps of a finished taper were read as one dose and
    dropped, so the taper's last stop looked like a stop after 14 days."""
    dose = dose_of([sig_dosage(text)])
    assert not dose.single_dose


def test_a_regular_order_is_not_a_single_dose() -> None:
    assert not dose_of([dosage(10, "mg")]).single_dose


def test_sequenced_instructions_are_a_schedule_not_a_sum() -> None:
    steps = [dict(dosage(v, "mg"), sequence=i) for i, v in enumerate([15, 10, 5], start=1)]
    read = dose_of(steps)
    assert read.scheduled == 45  # the first step
    assert read.steps == (45, 30, 15)
    assert read.is_taper_schedule


def test_split_day_inside_one_sequence_is_summed() -> None:
    steps = [dict(dosage(20, "mg", frequency=1), sequence=1),
             dict(dosage(10, "mg", frequency=2), sequence=1),
             dict(dosage(10, "mg", frequency=2), sequence=2)]
    read = dose_of(steps)
    assert read.steps == (40, 20)


def test_rising_schedule_is_not_a_taper() -> None:
    steps = [dict(dosage(v, "mg"), sequence=i) for i, v in enumerate([5, 10], start=1)]
    assert not dose_of(steps).is_taper_schedule


# ---------------------------------------------------------------- malformed


@pytest.mark.parametrize("dosages", [
    [], None, ["x"], [{"doseAndRate": "x"}], [dosage("ten", "mg")], [dosage(10, "furlong")],
    [dosage(-10, "mg")], [dosage(float("nan"), "mg")], [dosage(True, "mg")],
    [{"doseAndRate": [{"doseQuantity": {"value": 10, "code": "mg"}}]}],
    [dosage(10, "mg", frequency=0)], [dosage(10, "mg", period_unit="fortnight")],
])
def test_malformed_or_missing_is_unknown_with_a_reason(dosages: Any) -> None:
    read = dose_of(dosages)
    assert not read.known and read.unknown_reason


@pytest.mark.parametrize(("q", "days"), [
    ({"value": 1, "code": "d"}, 1), ({"value": 24, "code": "h"}, 1),
    ({"value": 1, "unit": "wk"}, 7), ({"code": "d"}, 1), ({"value": 0, "code": "d"}, None),
    ({"value": 1, "code": "x"}, None),
])
def test_duration_days(q: dict, days: float | None) -> None:
    assert duration_days(q) == (pytest.approx(days) if days else None)


def test_unknown_coding_product_never_raises() -> None:
    request = request_with(concept(coding(RXNORM, "197391")), dosages=[{"doseAndRate": [None]}])
    assert not order_dose(request).known


@pytest.mark.parametrize("value", [1e308, 1.7e308])
def test_a_dose_that_overflows_is_unknown_not_infinite(value: float) -> None:
    dosage = {"doseAndRate": [{"doseQuantity": quantity(value, "mg")}],
              "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}}}
    read = dose_of([dosage])
    assert read.scheduled is None and read.unknown_reason
