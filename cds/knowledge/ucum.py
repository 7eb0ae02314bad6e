"""Units in rules/ are UCUM codes, as FHIR Quantity.code carries them: a spelling that is
not one ('bpm', 'mcg', 'degC') names no unit an EHR sends as a code, and hides which
readings a threshold can be compared with. The grammar is ucumvert's, generated from the
UCUM specification's own unit table."""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path

from lark import Lark
from lark.exceptions import LarkError


@cache
def _parser() -> Lark:
    # ucumvert.get_ucum_parser() builds this same parser, but importing the package
    # imports pint too (~0.2 s of CPU at every start-up and `evaluate`); its grammar file
    # is all the check needs.
    spec = find_spec("ucumvert")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ucumvert is not installed (see pyproject.toml)")
    grammar = Path(spec.submodule_search_locations[0]) / "ucum_grammar.lark"
    return Lark(grammar.read_text(encoding="utf-8"), start="main_term", strict=True)


def is_ucum(unit: str) -> bool:
    try:
        _parser().parse(unit)
    except LarkError:
        return False
    return True
