"""Trust file loading: good files load with safe defaults, bad ones fail with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds.auth import TrustConfigError, load_trust_config
from cds.auth.keys_cli import public_jwk
from cds.auth.trust import DEFAULT_ALGORITHMS, parse_trust_config
from tests.support import paths

ISS = "https://ehr.example.org"
DOCS = paths.DOCS


@pytest.fixture(scope="module")
def ec_jwk() -> dict[str, Any]:
    return public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), "ec-1")


def write(tmp_path: Path, document: Any, name: str = "trust.yaml") -> Path:
    path = tmp_path / name
    text = json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(document: Any) -> str:
    with pytest.raises(TrustConfigError) as caught:
        parse_trust_config(document)
    return str(caught.value)


def test_minimal_yaml_file_loads_with_safe_defaults(tmp_path, ec_jwk):
    path = write(tmp_path, {"issuers": [{"iss": ISS, "jwks": {"keys": [ec_jwk]}}]})
    config = load_trust_config(path)
    assert config.algorithms == DEFAULT_ALGORITHMS
    assert config.clock_skew_seconds == 60
    assert config.max_token_lifetime_seconds == 600
    issuer = config.issuers[ISS]
    assert set(issuer.static_keys) == {"ec-1"}
    assert issuer.tenants is None


def test_json_file_with_jwks_file_and_tenants_loads(tmp_path, ec_jwk):
    (tmp_path / "client-keys.json").write_text(json.dumps({"keys": [ec_jwk]}), encoding="utf-8")
    document = {
        "algorithms": ["ES384"],
        "clock_skew_seconds": 30,
        "issuers": [
            {"iss": ISS, "jwks_file": "client-keys.json", "tenant": ["site-a", "site-b"]},
            {
                "iss": "https://other.example.org",
                "jwks_url": "https://other.example.org/jwks.json",
                "jku_allowed": ["https://keys.other.example.org/jwks.json"],
            },
        ],
    }
    config = load_trust_config(write(tmp_path, document, "trust.json"))
    assert config.algorithms == ("ES384",)
    assert config.clock_skew_seconds == 30
    assert set(config.issuers[ISS].static_keys) == {"ec-1"}
    assert config.issuers[ISS].tenants == {"site-a", "site-b"}
    other = config.issuers["https://other.example.org"]
    assert other.allows_jku("https://keys.other.example.org/jwks.json")
    assert other.allows_jku("https://other.example.org/jwks.json")
    assert not other.allows_jku("https://attacker.example/jwks.json")


def test_sandbox_trust_entry_in_docs_loads():
    config = load_trust_config(DOCS / "trust-sandbox.yaml")
    sandbox = config.issuers["https://sandbox.cds-hooks.org"]
    assert sandbox.allows_jku("https://sandbox.cds-hooks.org/.well-known/jwks.json")
    assert config.algorithms == ("ES384",)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512", "none"])
def test_symmetric_and_none_algorithms_are_refused(ec_jwk, algorithm):
    message = config_error(
        {"algorithms": ["ES384", algorithm], "issuers": [{"iss": ISS, "jwks": {"keys": [ec_jwk]}}]}
    )
    assert "algorithms/1" in message
    assert algorithm in message
    assert "asymmetric" in message


def test_unknown_setting_is_named(ec_jwk):
    message = config_error(
        {"clock_skew": 30, "issuers": [{"iss": ISS, "jwks": {"keys": [ec_jwk]}}]}
    )
    assert "clock_skew" in message


def test_missing_issuers_is_named():
    assert "'issuers' is a required property" in config_error({"algorithms": ["ES384"]})


def test_excessive_clock_skew_is_refused(ec_jwk):
    message = config_error(
        {"clock_skew_seconds": 3600, "issuers": [{"iss": ISS, "jwks": {"keys": [ec_jwk]}}]}
    )
    assert "clock_skew_seconds" in message


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        ({"iss": ISS}, "found: none"),
        (
            {"iss": ISS, "jwks_url": "https://ehr.example.org/jwks.json", "jwks_file": "k.json"},
            "found: jwks_file, jwks_url",
        ),
    ],
)
def test_each_issuer_needs_exactly_one_key_source(issuer, expected):
    message = config_error({"issuers": [issuer]})
    assert "exactly one of jwks, jwks_file, jwks_url" in message
    assert expected in message


def test_private_key_material_in_trust_file_is_refused():
    private = ec.generate_private_key(ec.SECP384R1())
    leaked = {**jwt.algorithms.ECAlgorithm.to_jwk(private, as_dict=True), "kid": "oops"}
    message = config_error({"issuers": [{"iss": ISS, "jwks": {"keys": [leaked]}}]})
    assert "private key material" in message


def test_symmetric_jwk_is_refused():
    oct_key = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}
    message = config_error({"issuers": [{"iss": ISS, "jwks": {"keys": [oct_key]}}]})
    assert "issuers/0/jwks/keys/0/kty" in message


def test_short_rsa_key_is_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    message = config_error(
        {"issuers": [{"iss": ISS, "jwks": {"keys": [public_jwk(weak.public_key(), "weak")]}}]}
    )
    assert "at least 2048 bits" in message


def test_duplicate_kid_is_refused(ec_jwk):
    message = config_error({"issuers": [{"iss": ISS, "jwks": {"keys": [ec_jwk, ec_jwk]}}]})
    assert "'ec-1' appears twice" in message


def test_duplicate_issuer_is_refused(ec_jwk):
    entry = {"iss": ISS, "jwks": {"keys": [ec_jwk]}}
    assert "issuer listed twice" in config_error({"issuers": [entry, entry]})


@pytest.mark.parametrize(
    "url",
    ["http://keys.example.org/jwks.json", "ftp://keys.example.org/jwks.json", "/jwks.json"],
)
def test_key_urls_must_be_https(url):
    message = config_error({"issuers": [{"iss": ISS, "jwks_url": url}]})
    assert "must be an https URL" in message


def test_plain_http_is_allowed_on_loopback_for_tests():
    config = parse_trust_config(
        {"issuers": [{"iss": ISS, "jwks_url": "http://127.0.0.1:8000/jwks.json"}]}
    )
    assert config.issuers[ISS].jwks_url == "http://127.0.0.1:8000/jwks.json"


def test_disallowed_jku_url_is_named():
    message = config_error(
        {
            "issuers": [
                {
                    "iss": ISS,
                    "jwks_url": "https://ehr.example.org/jwks.json",
                    "jku_allowed": ["http://keys.example.org/jwks.json"],
                }
            ]
        }
    )
    assert "jku_allowed" in message


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(TrustConfigError, match="cannot be read"):
        load_trust_config(tmp_path / "absent.yaml")


def test_missing_jwks_file_is_reported(tmp_path):
    path = write(tmp_path, {"issuers": [{"iss": ISS, "jwks_file": "absent.json"}]})
    with pytest.raises(TrustConfigError, match="jwks_file .*absent.json cannot be read"):
        load_trust_config(path)


def test_invalid_yaml_is_reported(tmp_path):
    path = tmp_path / "trust.yaml"
    path.write_text("issuers: [\n  - iss: x\n", encoding="utf-8")
    with pytest.raises(TrustConfigError, match="not valid YAML/JSON"):
        load_trust_config(path)
