"""What a done procedure found (its outcome, complications, notes) is read for a code set's
words, with negation: a dye study that found the catheter disconnected is an interrupted
pump (issue 22, class 4); one that found it intact is not."""

import pytest

from cds.facts.patient import procedure_found
from cds.knowledge import load_knowledge

CATHETER = load_knowledge().code_sets["intrathecal_catheter_problem"]


def dye_study(**found) -> dict:
    return {"resourceType": "Procedure", "status": "completed",
            "code": {"text": "Intrathecal catheter dye study"}, **found}


@pytest.mark.parametrize("procedure", [
    dye_study(note=[{"text": "Catheter disconnected at the pump connector."}]),
    dye_study(outcome={"text": "Kinked catheter at the anchor"}),
    dye_study(complication=[{"text": "fever"}, {"text": "catheter fracture"}]),
    dye_study(note=[{"text": "x"}, {"text": "Contrast leak: catheter occluded distally"}]),
])
def test_a_catheter_problem_found_by_a_procedure_is_read(procedure):
    assert procedure_found(procedure, CATHETER)


@pytest.mark.parametrize("procedure", [
    dye_study(),
    dye_study(note=[{"text": "No catheter disconnection, no kink; contrast reaches CSF."}]),
    dye_study(note="catheter disconnected"),  # not a list of annotations
    dye_study(note=[{"text": 42}], outcome="catheter kink"),
    {"resourceType": "Procedure", "code": {"text": "catheter disconnection repair"}},
])
def test_no_finding_negated_or_malformed_is_not_read(procedure):
    assert not procedure_found(procedure, CATHETER)
