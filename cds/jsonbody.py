"""Parse request bodies: JSON only, bounded in nesting depth, never a 500."""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

import orjson

from cds.errors import ClientError

_ESCAPED_BACKSLASH = re.compile(rb"\\\\")
_ESCAPED_QUOTE = re.compile(rb'\\"')
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def max_nesting_depth(raw: bytes) -> int:
    """Deepest container nesting in a JSON text, computed with C-speed byte operations.

    Escapes and string contents are removed first (brackets inside strings do not
    count); what is left is only brackets, a few thousand bytes for a large request.
    """
    text = _ESCAPED_QUOTE.sub(b"", _ESCAPED_BACKSLASH.sub(b"", raw))
    brackets = _STRING.sub(b"", text).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    return max(accumulate(_STEP[b] for b in brackets))


def parse_json_body(raw: bytes, max_depth: int) -> Any:
    # Checked before parsing: nothing downstream (schema validation, FHIR models) ever
    # recurses deeper than the limit, so no RecursionError can turn into a 500.
    if max_nesting_depth(raw) > max_depth:
        raise ClientError(400, f"The JSON body nests deeper than {max_depth} levels.")
    # orjson is several times faster than the standard library on 100+ KB FHIR payloads.
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ClientError(400, f"The body is not valid JSON: {exc.args[0]}") from None
