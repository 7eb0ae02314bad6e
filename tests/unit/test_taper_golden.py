"""Golden taper plans for typical regimens: exact steps, dates relative to the start."""

from __future__ import annotations

from datetime import date

import pytest

from cds.knowledge import load_knowledge
from cds.suggested_orders import IDENTIFIER_SYSTEM
from cds.taper.fhir import taper_medication_request
from cds.taper.planner import TaperPlan, plan_taper
from cds.taper.products import find_product
from cds.taper.render import plan_markdown
from cds.taper.suggestions import build_taper_suggestions

PARAMS = load_knowledge().taper
START = date.today()


def table(plan: TaperPlan) -> list[tuple[int, int, str, int, float]]:
    """(first day, last day, amount per administration, times a day, mg/day) per step."""
    return [
        (
            (step.start - START).days,
            (step.end - START).days,
            step.amount_text,
            step.administrations_per_day,
            step.daily_mg,
        )
        for step in plan.steps
    ]


def test_60_mg_a_day_tablets_three_times_a_day():
    plan = plan_taper(60, find_product("tablet", PARAMS), 3, "standard", START, PARAMS)
    # The label titration reversed (15 mg/day per step), held 5 days to reach 14+ days.
    assert table(plan) == [
        (0, 4, "1 x 15 mg tablet (15 mg)", 3, 45),
        (5, 9, "1 x 10 mg tablet (10 mg)", 3, 30),
        (10, 14, "1 x 5 mg tablet (5 mg)", 3, 15),
    ]
    assert (plan.target_date - START).days == 15
    assert plan.warnings == ()


def test_ozobax_1_mg_per_ml_30_mg_a_day():
    plan = plan_taper(30, find_product("ozobax", PARAMS), 3, "standard", START, PARAMS)
    assert table(plan) == [
        (0, 6, "6.5 mL (6.5 mg)", 3, 19.5),
        (7, 13, "5 mL (5 mg)", 2, 10),
    ]
    assert plan.duration_days == 14
    request = taper_medication_request(
        plan, plan.product, "Patient/p1", {"text": "Ozobax"}, None, None, params=PARAMS
    )
    doses = [d["doseAndRate"][0]["doseQuantity"] for d in request["dosageInstruction"]]
    assert [(q["value"], q["code"]) for q in doses] == [(6.5, "mL"), (5.0, "mL")]


def test_120_mg_a_day_high_risk():
    plan = plan_taper(120, find_product("tablet", PARAMS), 3, "high", START, PARAMS)
    assert table(plan) == [
        (0, 6, "1 x 20 mg + 1 x 15 mg tablets (35 mg)", 3, 105),
        (7, 13, "1 x 20 mg + 1 x 10 mg tablets (30 mg)", 3, 90),
        (14, 20, "1 x 20 mg + 1 x 5 mg tablets (25 mg)", 3, 75),
        (21, 27, "1 x 20 mg tablet (20 mg)", 3, 60),
        (28, 34, "1 x 15 mg tablet (15 mg)", 3, 45),
        (35, 41, "1 x 10 mg tablet (10 mg)", 3, 30),
        (42, 48, "1 x 5 mg tablet (5 mg)", 3, 15),
    ]
    assert plan.duration_days == 49
    assert plan.warnings == ("Current dose (120 mg/day) is above the labelled 80 mg/day maximum.",)


def test_cut_from_60_to_30_ends_on_the_new_dose():
    plan = plan_taper(60, find_product("tablet", PARAMS), 3, "standard", START, PARAMS, 30)
    assert table(plan) == [
        (0, 6, "1 x 15 mg tablet (15 mg)", 3, 45),
        (
            7,
            13,
            "1 x 15 mg tablet (15 mg) twice a day and 1 x 10 mg tablet (10 mg) once a day",
            3,
            40,
        ),
    ]
    assert plan.maintenance.daily_mg == 30 and plan.maintenance.end is None
    assert (plan.maintenance.start - START).days == 14


def test_markdown_table_lists_every_step_and_the_stop():
    plan = plan_taper(60, find_product("tablet", PARAMS), 3, "standard", START, PARAMS)
    markdown = plan_markdown(plan)
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert rows[0] == ("| Step | From | To | Dose per administration | Times a day | Daily total |")
    assert rows[2].startswith(f"| 1 | {START.isoformat()} |")
    assert rows[-1].startswith("| stop |") and rows[-1].endswith("| 0 mg |")
    assert len(rows) == 2 + 3 + 1


@pytest.mark.parametrize("is_cut", [False, True])
def test_suggestions_replace_or_keep(is_cut):
    plan = plan_taper(
        60, find_product("tablet", PARAMS), 3, "standard", START, PARAMS, 30 if is_cut else 0
    )
    request = taper_medication_request(
        plan, plan.product, "Patient/p1", {"text": "baclofen"}, None, None, params=PARAMS
    )
    replace, keep = build_taper_suggestions(plan, request, "draft-1", is_cut=is_cut)
    assert replace["isRecommended"] is True and keep["isRecommended"] is False
    assert replace["uuid"] != keep["uuid"]
    (update,) = replace["actions"]
    assert update["type"] == "update" and update["description"].startswith("Order the taper")
    # The draft's own id and this service's identifier, everything else the taper order.
    (identifier,) = update["resource"]["identifier"]
    assert identifier == {"system": IDENTIFIER_SYSTEM, "value": f"taper/{replace['uuid']}"}
    assert update["resource"] == {**request, "id": "draft-1", "identifier": [identifier]}
    # Without the current order to copy, keeping the dose removes the draft.
    assert keep["actions"][0]["resourceId"] == "MedicationRequest/draft-1"
    if is_cut:
        assert (
            replace["label"] == "Replace the cut with a supervised taper to 30 mg/day over 14 days"
        )
    else:
        assert replace["label"] == "Replace the stop with a supervised taper over 15 days"
    assert keep["label"] == "Keep the current dose (60 mg/day)"


def test_suggestions_refuse_a_plan_of_the_wrong_kind():
    plan = plan_taper(60, find_product("tablet", PARAMS), 3, "standard", START, PARAMS)
    with pytest.raises(ValueError):
        build_taper_suggestions(plan, {}, "MedicationRequest/d1", is_cut=True)
