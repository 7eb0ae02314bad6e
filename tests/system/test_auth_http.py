"""Client JWT authentication over real HTTP: good tokens pass, every attack gets a bare 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds.app import create_app
from cds.auth.keys_cli import public_jwk
from cds.config import ConfigError, Settings
from tests.support.requests import hook_request

ISS = "https://ehr.example.org"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


@pytest.fixture(scope="module")
def keys():
    return {
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "other": ec.generate_private_key(ec.SECP384R1()),
    }


@pytest.fixture(scope="module")
def trust_file(keys, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "trust.json"
    jwks = {"keys": [public_jwk(keys["ES384"].public_key(), "ec-1"),
                     public_jwk(keys["RS384"].public_key(), "rsa-1")]}
    path.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": jwks}]}))
    return path


def claims_for(aud: str, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": ISS, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(key, alg: str, kid: str, claims: dict, **header) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **header})


@pytest.fixture(scope="module")
def server(trust_file, tmp_path_factory):
    from tests.support.live import LiveServer

    tmp = tmp_path_factory.mktemp("authsrv")
    live = LiveServer({"CDS_AUTH": "on", "CDS_TRUST_FILE": str(trust_file),
                       "CDS_DATABASE_URL": f"sqlite:///{tmp / 'auth.db'}"})
    live.start(tmp / "server.log")
    yield live
    live.stop()


def attacks(keys, url: str, discovery_url: str) -> dict[str, str]:
    es, other = keys["ES384"], keys["other"]
    public_pem = keys["RS384"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    hs_body = unsigned(hs_header, claims_for(url))
    hs_sig = b64(hmac.new(public_pem, hs_body.encode(), hashlib.sha256).digest())
    good = sign(es, "ES384", "ec-1", claims_for(url))
    head, body, sig = good.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered_claims["iss"] = ISS
    tampered_claims["aud"] = url
    tampered_claims["exp"] += 3600
    now = int(time.time())
    return {
        "alg none": unsigned({"alg": "none", "kid": "ec-1"}, claims_for(url)) + ".",
        "HS256 with the public key": hs_body + "." + hs_sig,
        "wrong key": sign(other, "ES384", "ec-1", claims_for(url)),
        "unknown kid": sign(es, "ES384", "nope", claims_for(url)),
        "jku not allow-listed": sign(es, "ES384", "ec-1", claims_for(url),
                                     jku="http://127.0.0.1:9/jwks.json"),
        "expired": sign(es, "ES384", "ec-1", claims_for(url, iat=now - 900, exp=now - 600)),
        "issued in the future": sign(es, "ES384", "ec-1",
                                     claims_for(url, iat=now + 3600, exp=now + 3900)),
        "audience is discovery": sign(es, "ES384", "ec-1", claims_for(discovery_url)),
        "audience elsewhere": sign(es, "ES384", "ec-1",
                                   claims_for("https://evil.example/cds-services/x")),
        # Any other audience of the token could replay it here (issue 27.5).
        "audience array naming another service too": sign(
            es, "ES384", "ec-1", claims_for([url, "https://other-cds.example/cds-services/x"])),
        "untrusted issuer": sign(es, "ES384", "ec-1", claims_for(url, iss="https://evil.example")),
        "missing iss": sign(es, "ES384", "ec-1", claims_for(url, iss=None)),
        "missing aud": sign(es, "ES384", "ec-1", {k: v for k, v in claims_for(url).items()
                                                  if k != "aud"}),
        "missing exp": sign(es, "ES384", "ec-1", claims_for(url, exp=None)),
        "missing iat": sign(es, "ES384", "ec-1", claims_for(url, iat=None)),
        "missing jti": sign(es, "ES384", "ec-1", claims_for(url, jti=None)),
        "missing kid": jwt.encode(claims_for(url), es, algorithm="ES384"),
        "tampered payload": head + "." + b64(json.dumps(tampered_claims).encode()) + "." + sig,
        "not a JWT": "hello",
    }




@pytest.mark.parametrize("name", [
    "alg none", "HS256 with the public key", "wrong key", "unknown kid", "jku not allow-listed",
    "expired", "issued in the future", "audience is discovery", "audience elsewhere",
    "audience array naming another service too", "untrusted issuer", "missing iss",
    "missing aud", "missing exp", "missing iat", "missing jti", "missing kid",
    "tampered payload", "not a JWT",
])
def test_attack_is_rejected_over_http(server, keys, name):
    url = server.base_url + "/cds-services/baclofen-patient-view"
    token = attacks(keys, url, server.base_url + "/cds-services")[name]
    response = requests.post(url, json=hook_request("patient-view"),
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["issue"][0]["diagnostics"] == "Authentication required."


@pytest.mark.parametrize("alg,kid,as_array", [("ES384", "ec-1", False), ("RS384", "rsa-1", False),
                                              ("ES384", "ec-1", True)])
def test_good_tokens_are_accepted_over_http(server, keys, alg, kid, as_array):
    url = server.base_url + "/cds-services/baclofen-patient-view"
    token = sign(keys[alg], alg, kid, claims_for([url] if as_array else url))
    response = requests.post(url, json=hook_request("patient-view"),
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200
    discovery = server.base_url + "/cds-services"
    token = sign(keys[alg], alg, kid, claims_for(discovery))
    assert requests.get(discovery, headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 200


def test_replayed_token_is_rejected_over_http(server, keys):
    url = server.base_url + "/cds-services/baclofen-patient-view"
    headers = {"Authorization": "Bearer " + sign(keys["ES384"], "ES384", "ec-1", claims_for(url))}
    assert requests.post(url, json=hook_request("patient-view"), headers=headers,
                         timeout=10).status_code == 200
    assert requests.post(url, json=hook_request("patient-view"), headers=headers,
                         timeout=10).status_code == 401


def test_no_token_and_feedback_and_discovery_need_auth(server):
    for method, path in (("GET", "/cds-services"), ("POST", "/cds-services/baclofen-order-sign"),
                         ("POST", "/cds-services/baclofen-order-sign/feedback")):
        response = requests.request(method, server.base_url + path, json={}, timeout=10)
        assert response.status_code == 401, path
        assert "WWW-Authenticate" in response.headers
    assert requests.get(server.base_url + "/healthz", timeout=10).status_code == 200


def test_rejection_reason_is_logged_without_the_token(server, keys):
    url = server.base_url + "/cds-services/baclofen-patient-view"
    token = sign(keys["other"], "ES384", "ec-1", claims_for(url))
    requests.post(url, json=hook_request("patient-view"),
                  headers={"Authorization": f"Bearer {token}"}, timeout=10)
    time.sleep(0.2)
    log = server.log_path.read_text()
    assert "auth_failure" in log
    assert token not in log and token.split(".")[2] not in log


def test_auth_on_without_trust_file_refuses_to_start(tmp_path):
    with pytest.raises(ConfigError, match="CDS_TRUST_FILE"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", auth_enabled=True))


def test_auth_on_without_public_base_url_refuses_to_start(tmp_path, trust_file):
    """Issue 15 finding 8: without it, aud was checked against the request's Host."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", auth_enabled=True,
                        trust_file=str(trust_file))
    with pytest.raises(ConfigError, match="CDS_PUBLIC_BASE_URL"):
        create_app(settings)


def test_token_for_another_deployment_is_refused_whatever_the_host_header(server, keys):
    """Issue 15 finding 8, over HTTP: aud names another deployment, and the request says
    it is for that host."""
    other = "https://cds.other-hospital.example"
    path = "/cds-services/baclofen-patient-view"
    token = sign(keys["ES384"], "ES384", "ec-1", claims_for(other + path))
    response = requests.post(server.base_url + path, json=hook_request("patient-view"),
                             headers={"Authorization": f"Bearer {token}",
                                      "Host": "cds.other-hospital.example",
                                      "X-Forwarded-Host": "cds.other-hospital.example",
                                      "X-Forwarded-Proto": "https"}, timeout=10)
    assert response.status_code == 401


def test_auth_is_on_by_default():
    assert Settings.from_env({}).auth_enabled is True
