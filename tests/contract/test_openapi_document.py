from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from tests.support.openapi import SPEC_PATH


def test_openapi_document_is_valid_openapi_31():
    # base_uri lets the validator follow the request schemas into cds/schemas/.
    document, base_uri = read_from_filename(str(SPEC_PATH))
    assert document["openapi"].startswith("3.1")
    validate(document, base_uri=base_uri)
