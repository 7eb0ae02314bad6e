import yaml
from openapi_spec_validator import validate

from tests.support.openapi import SPEC_PATH


def test_openapi_document_is_valid_openapi_31():
    document = yaml.safe_load(SPEC_PATH.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document)
