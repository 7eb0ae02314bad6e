"""Code shapes the loader can check without a terminology server."""

from __future__ import annotations

import re

LOINC_SYSTEM = "http://loinc.org"
# A LOINC term is digits, a hyphen and a mod-10 check digit ("8310-5"); answers, parts and
# answer lists carry a prefix (LA, LP, LL) and a check digit computed otherwise.
_LOINC_TERM = re.compile(r"(\d{1,7})-(\d)")
_LOINC_PREFIXED = re.compile(r"L[APL]\d{1,7}-\d")


def loinc_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit (the Luhn algorithm): from the right, every other digit
    starting with the last is doubled, and the digits of the products are summed."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return (10 - total % 10) % 10


def loinc_problem(code: str) -> str | None:
    """Why `code` cannot be a LOINC code, or None."""
    if _LOINC_PREFIXED.fullmatch(code):
        return None
    match = _LOINC_TERM.fullmatch(code)
    if match is None:
        return f"'{code}' is not a LOINC code (digits, a hyphen and a check digit: 8310-5)"
    expected = loinc_check_digit(match.group(1))
    if int(match.group(2)) != expected:
        return f"'{code}' fails the LOINC check digit (for {match.group(1)} it is {expected})"
    return None
