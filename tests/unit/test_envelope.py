"""The envelope check answers "valid?" with jsonschema-rs and explains a refusal with the
reference validator (python-jsonschema). The two must agree on every document, both
ways: a document the fast one lets through is one the reference accepts, and one it
refuses is one the reference can name an error in."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds import envelope
from cds.errors import ClientError
from tests.contract.test_fuzz_boundary import FEEDBACK_FIELDS, JSON_VALUES, REQUEST_PATHS, put
from tests.support.requests import hook_request, stop_order_request


def reference_accepts(document, schema: str) -> bool:
    return next(envelope._validator(schema).iter_errors(document), None) is None


def both_agree(document, schema: str) -> None:
    fast = envelope._fast_validator(schema).is_valid(document)
    assert fast == reference_accepts(document, schema), f"{document!r:.500}"


@given(edits=st.lists(st.tuples(st.sampled_from(REQUEST_PATHS), JSON_VALUES),
                      min_size=0, max_size=3),
       hook=st.sampled_from(["order-sign", "order-select", "patient-view", "encounter-start",
                             "encounter-discharge"]))
@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fast_and_reference_agree_on_requests(edits, hook):
    request = stop_order_request() if hook in ("order-sign", "order-select") \
        else hook_request(hook)
    request["hook"] = hook
    for path, value in edits:
        put(request, path, copy.deepcopy(value))
    both_agree(request, "request")


@given(entries=st.lists(st.fixed_dictionaries({}, optional=FEEDBACK_FIELDS), max_size=3))
@settings(max_examples=800, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_fast_and_reference_agree_on_feedback(entries):
    both_agree({"feedback": entries}, "feedback")


def test_a_refusal_still_names_the_path_and_rule():
    request = stop_order_request()
    request["context"]["patientId"] = 7
    with pytest.raises(ClientError) as refused:
        envelope.validate(request, "request")
    assert refused.value.message == "$.context.patientId must be of type string"


def test_a_valid_request_passes():
    assert envelope.validate(stop_order_request(), "request") is None
