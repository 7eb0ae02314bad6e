"""Units in rules/ are UCUM codes, as FHIR Quantity.code carries them: a spelling that is
not one ('bpm', 'mcg', 'degC') names no unit an EHR sends as a code, and hides which
readings a threshold can be compared with. The grammar is ucumvert's, built from the
UCUM specification's own unit table."""

from __future__ import annotations

from functools import cache

from lark import Lark
from lark.exceptions import LarkError
from ucumvert import InvalidUcumError, get_ucum_parser


@cache
def _parser() -> Lark:
    return get_ucum_parser()


def is_ucum(unit: str) -> bool:
    try:
        _parser().parse(unit)
    except (LarkError, InvalidUcumError):
        return False
    return True
