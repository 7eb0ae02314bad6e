import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.errors import ClientError
from cds.web.json_body import max_nesting_depth, parse_json_body


def reference_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet='[]{}"\\k'), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_depth_matches_a_reference_walk(value):
    for raw in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert max_nesting_depth(raw.encode()) == reference_depth(value)


def test_brackets_inside_strings_do_not_count():
    assert max_nesting_depth(b'{"a": "[[[[[[", "b": "\\"[[["}') == 1


def test_too_deep_is_a_client_error():
    with pytest.raises(ClientError) as error:
        parse_json_body(b"[" * 65 + b"]" * 65, max_depth=64)
    assert error.value.status == 400
    assert parse_json_body(b"[" * 64 + b"]" * 64, max_depth=64) is not None


def test_mixed_nesting_is_counted_per_level():
    assert max_nesting_depth(b'{"a": [1]}') == 2
    assert max_nesting_depth(b'[{"a": {}}]') == 3
    assert max_nesting_depth(b'{"a": "[", "b": [], "c": "]"}') == 2


def test_closing_brackets_in_strings_cannot_hide_depth():
    deep = b"[" * 65 + b"]" * 65
    for decoy in (b'"]]]]]]]]"', b'"}}}}"', b'"\\"]]]"', b'"a]", "b}"'):
        raw = b'{"x": [' + decoy + b', ' + deep + b']}'
        assert max_nesting_depth(raw) == 67
        with pytest.raises(ClientError):
            parse_json_body(raw, max_depth=64)
