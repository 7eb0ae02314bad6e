"""Properties of every taper plan across doses, products, frequencies and risk."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds.knowledge import load_knowledge
from cds.product import Product
from cds.taper.fhir import taper_medication_request
from cds.taper.planner import IntrathecalNoOralPlan, TaperPlan, plan_taper
from cds.taper.products import delivery_for, find_product
from cds.taper.suggestions import build_taper_suggestions

PARAMS = load_knowledge().taper
TODAY = date.today()
EPS = 1e-6

PRODUCTS = [
    find_product("tablet", PARAMS),
    find_product("197391", PARAMS),  # 10 mg tablet by RxCUI
    find_product("ozobax", PARAMS),
    find_product("ozobax ds", PARAMS),
    find_product("fleqsuvy", PARAMS),
    find_product("lyvispah", PARAMS),
    Product(name="baclofen"),  # unknown product: planned in mg
    Product(name="baclofen oral solution", form="solution", route="oral"),  # no concentration
]


def check_plan(plan: TaperPlan, daily_dose: float, frequency: int) -> None:
    policy = PARAMS.policy(plan.risk)
    levels = plan.daily_levels_mg
    # Non-increasing, never above the current dose, each step within the bound.
    for before, after in zip(levels, levels[1:], strict=False):
        assert after <= before + EPS
        assert before - after <= plan.max_step_mg_per_day + EPS
    assert max(levels[1:]) <= daily_dose + EPS
    # Ends at zero or the target.
    assert levels[-1] == plan.target_mg
    if plan.kind == "stop":
        assert plan.maintenance is None
    else:
        assert plan.maintenance is not None
        assert plan.maintenance.daily_mg == pytest.approx(plan.target_mg)
    # Long enough, contiguous steps each held at least the policy interval.
    assert plan.duration_days >= policy.min_duration_days
    assert plan.steps[0].start == TODAY
    for step, following in zip(plan.steps, plan.steps[1:], strict=False):
        assert following.start == step.end + timedelta(days=1)
    assert all(step.days >= policy.interval_days for step in plan.steps)
    assert plan.target_date == plan.steps[-1].end + timedelta(days=1)
    # Deliverable doses; no administration above today's; frequency never rises.
    unit = plan.delivery.unit_mg
    largest_today = max(daily_dose / frequency, unit)
    frequencies = [frequency]
    for step in [*plan.steps, *([plan.maintenance] if plan.maintenance else [])]:
        for part in step.parts:
            assert plan.delivery.is_deliverable(part.dose_mg), part
            assert part.dose_mg <= largest_today + unit - EPS
            if plan.delivery.kind == "liquid":
                ml = plan.delivery.ml_of(part.dose_mg)
                steps_of_ml = ml / PARAMS.liquid_measuring_increment_ml
                assert abs(steps_of_ml - round(steps_of_ml)) < EPS
        frequencies.append(step.administrations_per_day)
    assert frequencies == sorted(frequencies, reverse=True)
    assert not any("exceeds" in warning for warning in plan.warnings)


def check_fhir(plan: TaperPlan) -> dict:
    request = taper_medication_request(
        plan, plan.product, "Patient/p1", {"text": plan.product.name}, None, None, params=PARAMS
    )
    MedicationRequest.model_validate(request)
    assert request["status"] == "draft" and request["intent"] == "order"
    sequences = [dosage["sequence"] for dosage in request["dosageInstruction"]]
    assert sequences == sorted(sequences)
    assert sequences[-1] == len(plan.steps) + (1 if plan.maintenance else 0)
    return request


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    daily_dose=st.integers(min_value=10, max_value=600).map(lambda half_mg: half_mg / 2),
    product=st.sampled_from(PRODUCTS),
    frequency=st.integers(min_value=1, max_value=6),
    risk=st.sampled_from(["standard", "high"]),
)
def test_stop_plans_keep_every_rule(daily_dose, product, frequency, risk):
    assume(daily_dose >= delivery_for(product, PARAMS).unit_mg)
    plan = plan_taper(daily_dose, product, frequency, risk, TODAY, PARAMS)
    assert plan.kind == "stop"
    check_plan(plan, daily_dose, frequency)
    check_fhir(plan)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    daily_dose=st.integers(min_value=10, max_value=600).map(lambda half_mg: half_mg / 2),
    product=st.sampled_from(PRODUCTS),
    frequency=st.integers(min_value=1, max_value=6),
    risk=st.sampled_from(["standard", "high"]),
    fraction=st.floats(min_value=0.05, max_value=0.95),
)
def test_cut_plans_end_at_the_target(daily_dose, product, frequency, risk, fraction):
    unit = delivery_for(product, PARAMS).unit_mg
    target = (int(daily_dose * fraction / unit)) * unit
    assume(0 < target < daily_dose)
    try:
        plan = plan_taper(daily_dose, product, frequency, risk, TODAY, PARAMS, target)
    except ValueError as exc:
        # Only targets the product cannot deliver at a bounded dose may be refused.
        assert "not deliverable" in str(exc) or "between the current dose" in str(exc)
        assume(False)
    assert plan.kind == "cut"
    check_plan(plan, daily_dose, frequency)
    request = check_fhir(plan)
    assert "end" not in request["dosageInstruction"][-1]["timing"]["repeat"]["boundsPeriod"]
    suggestions = build_taper_suggestions(plan, request, "MedicationRequest/d1", is_cut=True)
    assert "taper to" in suggestions[0]["label"]


def test_high_risk_is_slower_and_longer():
    tablets = find_product("tablet", PARAMS)
    standard = plan_taper(60, tablets, 3, "standard", TODAY, PARAMS)
    high = plan_taper(60, tablets, 3, "high", TODAY, PARAMS)
    assert high.interval_days >= PARAMS.high.interval_days > PARAMS.standard.interval_days
    assert high.duration_days > standard.duration_days
    assert high.duration_days >= PARAMS.high.min_duration_days




def test_unknown_product_is_planned_in_mg_and_says_so():
    plan = plan_taper(30, Product(name="baclofen"), 3, "standard", TODAY, PARAMS)
    assert plan.delivery.kind == "mg"
    assert all(part.dose_mg % 5 == 0 for step in plan.steps for part in step.parts)
    assert any("not known" in warning for warning in plan.warnings)


def test_missing_frequency_uses_the_policy_default_and_says_so():
    plan = plan_taper(45, find_product("tablet", PARAMS), None, "standard", TODAY, PARAMS)
    assert plan.start_administrations_per_day == PARAMS.default_administrations_per_day
    assert any("Frequency not stated" in warning for warning in plan.warnings)


def test_intrathecal_gets_advice_not_a_plan():
    pump = find_product("1300890", PARAMS)
    assert pump is not None and pump.is_intrathecal
    with pytest.raises(IntrathecalNoOralPlan) as raised:
        plan_taper(0.5, pump, None, "standard", TODAY, PARAMS)
    assert "reprogramming" in raised.value.advice


@pytest.mark.parametrize(
    ("daily_dose", "target", "message"),
    [(0, 0, "daily dose"), (60, 60, "target"), (60, -5, "target"), (60, 33, "whole")],
)
def test_bad_doses_are_refused_with_a_reason(daily_dose, target, message):
    tablets = find_product("tablet", PARAMS)
    with pytest.raises(ValueError, match=message):
        plan_taper(daily_dose, tablets, 3, "standard", TODAY, PARAMS, target)


def test_product_lookup_by_rxcui_and_text():
    assert find_product("197391", PARAMS).strength_mg == 10
    assert find_product("Ozobax DS", PARAMS).concentration_mg_per_ml == 2
    assert find_product("ozobax", PARAMS).concentration_mg_per_ml == 1
    assert find_product("5 mg/mL suspension", PARAMS).concentration_mg_per_ml == 5
    assert find_product("lyvispah granules", PARAMS).form == "granules"
    assert find_product("999999", PARAMS) is None
    assert find_product("aspirin", PARAMS) is None


def test_tablet_amounts_use_fewest_whole_tablets():
    tablets = delivery_for(find_product("tablet", PARAMS), PARAMS)
    assert tablets.amount_text(10) == "1 x 10 mg tablet (10 mg)"
    assert tablets.amount_text(25) == "1 x 20 mg + 1 x 5 mg tablets (25 mg)"
    assert not tablets.is_deliverable(7.5)



