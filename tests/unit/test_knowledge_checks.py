"""`knowledge check` catches knowledge that loads but would be wrong at the bedside: a
unit that is not UCUM or not the reading's, a malformed LOINC code, a card placeholder
that has no value where the text uses it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from cds.knowledge import KnowledgeError, load_knowledge
from cds.knowledge.codes import loinc_check_digit, loinc_problem
from cds.knowledge.loader import FILES, _read_packaged

RAW = {name: _read_packaged(name) for name in FILES}


def load_with(name: str, change) -> Any:
    documents = copy.deepcopy(RAW)
    change(documents[name])
    return load_knowledge(documents=documents)


def refuses(name: str, change, *words: str) -> None:
    with pytest.raises(KnowledgeError) as caught:
        load_with(name, change)
    for word in words:
        assert word in str(caught.value)


# ---------------------------------------------------------------- units


def test_a_threshold_unit_that_is_not_ucum_refuses():
    def bpm(doc):
        doc["thresholds"]["tachycardia_bpm"]["unit"] = "bpm"
    refuses("thresholds.yaml", bpm, "tachycardia_bpm.unit", "not a UCUM unit")


def test_a_reading_compared_with_a_threshold_of_another_unit_refuses():
    def fever_against_heart_rate(doc):
        doc["signs"]["fever"]["readings"][0]["threshold"] = "tachycardia_bpm"
    refuses("signs.yaml", fever_against_heart_rate, "signs.fever.readings[0].threshold",
            "tachycardia_bpm' is in /min", "compared in Cel")


def test_a_unit_alias_key_that_is_not_ucum_refuses():
    def degc(doc):
        aliases = doc["units"]["aliases"]
        aliases["degC"] = aliases.pop("[degF]")
    refuses("terminology.yaml", degc, "units.aliases.degC", "not a UCUM unit")


# ---------------------------------------------------------------- LOINC


@pytest.mark.parametrize("code, problem", [("83105", "not a LOINC code"),
                                           ("8310-4", "check digit"),
                                           ("8310-5x", "not a LOINC code")])
def test_a_malformed_loinc_code_refuses(code, problem):
    def bad_code(doc):
        doc["code_sets"]["body_temperature"]["codes"][0]["code"] = code
    refuses("terminology.yaml", bad_code, "code_sets.body_temperature.codes[0]", problem)


def test_a_site_override_adding_a_bad_loinc_code_refuses(tmp_path: Path):
    override = tmp_path / "site.yaml"
    override.write_text("code_sets:\n  body_temperature:\n    codes:\n"
                        "      - {system: loinc, code: '8310-4', display: Temp,\n"
                        "         status: unverified, note: site code}\n")
    with pytest.raises(KnowledgeError, match="check digit"):
        load_knowledge(override)


def test_the_check_digit_is_loincs_mod_10():
    assert [loinc_check_digit(d) for d in ("8310", "8867", "2160", "98979")] == [5, 4, 0, 8]
    assert loinc_problem("LA6576-8") is None  # answer codes keep their own check digit


# ---------------------------------------------------------------- card placeholders


def _summary(kind: str, text: str, when: list | None = None):
    def change(doc):
        variant = {"text": text, **({"when": when} if when else {})}
        doc["kinds"][kind]["summary"].insert(0, variant)
    return change


def test_a_line_placeholder_in_a_summary_refuses():
    # What a clinician saw: "(, 0, 30 - 0 mg/day ...)".
    change = _summary("supervised-taper", "Baclofen ({label}, {exposure_days}, {steps_text})")
    refuses("cards.yaml", change, "kinds.supervised-taper.summary[0].text", "'{label}'",
            "detail.sign_line")


def test_a_subject_placeholder_without_its_fact_in_when_refuses():
    change = _summary("taper-adjust", "Pump alarm ({pump_alarm_text}) during a taper")
    refuses("cards.yaml", change, "kinds.taper-adjust.summary[0].text", "pump_alarm")


def test_a_subject_placeholder_guarded_by_its_fact_loads():
    load_with("cards.yaml", _summary("taper-adjust", "Pump alarm ({pump_alarm_text})",
                                     ["pump_alarm"]))
    load_with("cards.yaml", _summary("taper-adjust", "Refill {depletion_when}",
                                     [{"any": ["pump_refill_overdue", "pump_depletion_soon"]}]))


def test_an_action_needs_the_same_guard():
    def change(doc):
        doc["kinds"]["taper-adjust"]["actions"].append({"text": "Raised {increase_ago}."})
    refuses("cards.yaml", change, "kinds.taper-adjust.actions", "recent_increase")
