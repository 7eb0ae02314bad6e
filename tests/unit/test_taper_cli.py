"""`baclofen-cds taper` as a function: table, FHIR output, intrathecal advice, errors."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.taper.cli import run_taper_cli

TODAY = date.today()


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run_taper_cli(list(argv), out=out, today=TODAY)
    return code, out.getvalue()


def run_split(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_taper_cli(list(argv), out=out, today=TODAY, err=err)
    return code, out.getvalue(), err.getvalue()


def test_prints_the_schedule_for_a_tablet_rxcui():
    code, text = run("--daily-dose", "60", "--product", "197391", "--frequency", "3")
    assert code == 0
    assert "Product: baclofen 10 mg oral tablet" in text
    assert "Taper from 60 mg/day to stop over 15 days" in text
    assert f"1     {TODAY.isoformat()}" in text
    assert "1 x 15 mg tablet (15 mg)" in text
    assert f"stop  {(TODAY + timedelta(days=15)).isoformat()}" in text


def test_start_date_risk_and_target_are_honoured():
    start = TODAY + timedelta(days=2)
    code, text = run(
        "--daily-dose",
        "60",
        "--product",
        "tablet",
        "--risk",
        "high",
        "--start",
        start.isoformat(),
        "--target",
        "30",
    )
    assert code == 0
    assert "to 30 mg/day" in text and "high risk schedule" in text
    assert f"new dose  {(start + timedelta(days=28)).isoformat()}" in text


def test_fhir_flag_prints_a_valid_medication_request():
    code, text, table = run_split("--daily-dose", "30", "--product", "ozobax", "--frequency", "3",
                                  "--fhir")
    assert code == 0
    # `taper --fhir > order.json` must be a JSON file: the table goes to stderr.
    request = json.loads(text)
    assert "Taper from 30 mg/day" in table
    MedicationRequest.model_validate(request)
    assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"] == "mL"


def test_unknown_product_is_planned_in_mg_with_a_warning():
    code, text = run("--daily-dose", "40", "--product", "something else")
    assert code == 0
    assert "Warning: Product or liquid concentration not known" in text


def test_intrathecal_prints_advice_instead_of_a_plan():
    code, text = run("--daily-dose", "0.4", "--product", "gablofen")
    assert code == 0
    assert "reprogramming the pump" in text
    assert "Step" not in text


def test_fhir_flag_for_an_intrathecal_product_prints_no_json_and_fails():
    code, text, advice = run_split("--daily-dose", "0.4", "--product", "gablofen", "--fhir")
    assert code == 1
    assert text == ""
    assert "reprogramming the pump" in advice


def test_bad_input_returns_2(capsys):
    assert run("--daily-dose", "0")[0] == 2
    assert "daily dose" in capsys.readouterr().err
    assert run("--daily-dose", "60", "--frequency", "9")[0] == 2
    assert run("--product", "tablet")[0] == 2
