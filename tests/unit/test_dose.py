"""Daily dose arithmetic: units, frequencies, liquids, PRN maxima and intrathecal rates."""

import pytest

from cds.facts.dose import administrations_per_day, daily_dose
from cds.product import Product
from tests.clinical_builders import dosage

TABLET_10 = Product("baclofen 10 mg tablet", "tablet", "oral", strength_mg=10)
SOLUTION_1 = Product("baclofen 1 mg/mL", "solution", "oral", concentration_mg_per_ml=1)
SUSPENSION_5 = Product("baclofen 5 mg/mL", "suspension", "oral", concentration_mg_per_ml=5)
LIQUID_UNKNOWN = Product("baclofen oral solution", "solution", "oral")
PUMP = Product("Gablofen 2 mg/mL", "injection", "intrathecal", concentration_mg_per_ml=2)


def dose_of(dosages, product=TABLET_10):
    return daily_dose({"dosageInstruction": dosages}, product)


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (10, "mg", 30), (10000, "ug", 30), (10000, "mcg", 30), (0.01, "g", 30), (1, "TAB", 30),
    (2, "{tbl}", 60), (1.5, "tablet", 45),
])
def test_units_three_times_a_day(value, unit, expected):
    assert dose_of([dosage(value, unit)]).amount == pytest.approx(expected)


@pytest.mark.parametrize(("product", "ml", "expected"), [
    (SOLUTION_1, 10, 30), (SUSPENSION_5, 2, 30), (SUSPENSION_5, 10, 150),
])
def test_liquids_use_the_product_concentration(product, ml, expected):
    assert dose_of([dosage(ml, "mL")], product).amount == pytest.approx(expected)


def test_liquid_without_known_concentration_is_unknown_not_assumed():
    result = dose_of([dosage(10, "mL")], LIQUID_UNKNOWN)
    assert not result.known and "unit" in result.unknown_reason


@pytest.mark.parametrize(("timing", "per_day"), [
    ({"code": {"coding": [{"code": "BID"}]}}, 2),
    ({"code": {"coding": [{"code": "TID"}]}}, 3),
    ({"code": {"coding": [{"code": "QID"}]}}, 4),
    ({"code": {"coding": [{"code": "Q8H"}]}}, 3),
    ({"code": {"coding": [{"code": "Q6H"}]}}, 4),
    ({"code": {"coding": [{"code": "Q4H"}]}}, 6),
    ({"code": {"coding": [{"code": "QD"}]}}, 1),
    ({"code": {"text": "twice daily"}}, 2),
    ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, 3),
    ({"repeat": {"frequency": 2, "frequencyMax": 3, "period": 1, "periodUnit": "d"}}, 3),
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, 1 / 7),
    ({"repeat": {"when": ["MORN", "NIGHT"]}}, 2),
])
def test_frequencies(timing, per_day):
    assert administrations_per_day(timing) == pytest.approx(per_day)


def test_several_instructions_are_summed():
    morning = dosage(20, "mg", frequency=1)
    rest = dosage(10, "mg", frequency=2)
    result = dose_of([morning, rest])
    assert result.amount == 40
    assert result.administrations_per_day == 3


def test_dose_range_counts_at_its_high_end():
    d = dosage(None)
    d["doseAndRate"] = [{"doseRange": {"low": {"value": 5, "code": "mg"},
                                       "high": {"value": 10, "code": "mg"}}}]
    assert dose_of([d]).amount == 30


def test_prn_counts_at_max_dose_per_period():
    d = dosage(10, "mg", frequency=1, asNeededBoolean=True,
               maxDosePerPeriod={"numerator": {"value": 40, "code": "mg"},
                                 "denominator": {"value": 1, "code": "d"}})
    result = dose_of([d])
    assert result.amount == 40 and result.as_needed


def test_sequenced_instructions_are_a_schedule_not_a_sum():
    steps = [dict(dosage(v, "mg"), sequence=i) for i, v in enumerate([15, 10, 5], start=1)]
    result = dose_of(steps)
    assert result.amount == 45
    assert result.steps == (45, 30, 15)
    assert result.is_taper_schedule


@pytest.mark.parametrize(("rate", "expected"), [
    ({"rateQuantity": {"value": 400, "code": "ug/d"}}, 400),
    ({"rateQuantity": {"value": 20, "code": "ug/h"}}, 480),
    ({"rateQuantity": {"value": 0.3, "code": "mg/d"}}, 300),
    ({"rateQuantity": {"value": 0.25, "code": "mL/d"}}, 500),
    ({"rateRatio": {"numerator": {"value": 600, "code": "ug"},
                    "denominator": {"value": 1, "code": "d"}}}, 600),
])
def test_intrathecal_rates_in_mcg_per_day(rate, expected):
    result = dose_of([{"doseAndRate": [rate]}], PUMP)
    assert result.amount == pytest.approx(expected)
    assert result.unit == "ug/d"


@pytest.mark.parametrize("dosages", [
    [], None, ["x"], [{"doseAndRate": "x"}], [dosage("ten", "mg")], [dosage(10, "furlong")],
    [{"doseAndRate": [{"doseQuantity": {"value": 10, "code": "mg"}}]}],
    [dosage(10, "mg", frequency=0)], [dosage(10, "mg", period_unit="fortnight")],
])
def test_malformed_or_missing_is_unknown(dosages):
    result = daily_dose({"dosageInstruction": dosages}, TABLET_10)
    assert not result.known
    assert result.unknown_reason
