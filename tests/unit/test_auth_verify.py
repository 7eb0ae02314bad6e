"""JWT verification: the accepted path, and every RFC 8725 / CDS Hooks attack rejected."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds.auth import Authenticator, AuthError, load_trust_config
from cds.auth.keys_cli import public_jwk, run_keys_cli
from cds.auth.trust import parse_trust_config

ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"
SERVICE_URL = f"{BASE}/cds-services/baclofen-discontinuation"
DISCOVERY_URL = f"{BASE}/cds-services"
SKEW = 60


class FakeReplayStore:
    """Same contract as the service's database-backed store, kept in a dict."""

    def __init__(self) -> None:
        self.claimed: dict[tuple[str, str], datetime] = {}

    def claim_jti(self, iss: str, jti: str, expires_at: datetime) -> bool:
        if (iss, jti) in self.claimed:
            return False
        self.claimed[(iss, jti)] = expires_at
        return True


class NoRemoteKeys:
    """A JWK Set cache that must never be asked (static keys only, or rejected before)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def find_key(self, url: str, kid: str) -> None:
        self.calls.append((url, kid))
        return None


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def replay_store() -> FakeReplayStore:
    return FakeReplayStore()


@pytest.fixture
def remote_keys() -> NoRemoteKeys:
    return NoRemoteKeys()


def trust_document(rsa_key, ec_key, **issuer_extra: Any) -> dict[str, Any]:
    keys = [public_jwk(rsa_key.public_key(), "rsa-1"), public_jwk(ec_key.public_key(), "ec-1")]
    for jwk in keys:
        del jwk["alg"]  # let the same RSA key serve RS384 and RS256 tests
    return {
        "clock_skew_seconds": SKEW,
        "issuers": [{"iss": ISS, "jwks": {"keys": keys}, **issuer_extra}],
    }


@pytest.fixture
def authenticator(rsa_key, ec_key, replay_store, remote_keys, now) -> Authenticator:
    trust = parse_trust_config(trust_document(rsa_key, ec_key))
    return Authenticator(trust, replay_store, BASE, jwks_cache=remote_keys, clock=lambda: now)


def claims_at(now: datetime, **overrides: Any) -> dict[str, Any]:
    issued = int(now.timestamp())
    claims = {
        "iss": ISS,
        "aud": SERVICE_URL,
        "iat": issued,
        "exp": issued + 300,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(key, alg: str, claims: dict[str, Any], kid: str | None = "ec-1", **header: Any) -> str:
    headers = {"typ": "JWT", **header}
    if kid is not None:
        headers["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rejected(authenticator: Authenticator, token: str, url: str = SERVICE_URL) -> str:
    with pytest.raises(AuthError) as caught:
        authenticator.authenticate(f"Bearer {token}", url)
    reason = caught.value.reason
    signature = token.split(".")[-1]
    assert token not in reason  # reasons are logged: never the token
    assert not signature or signature not in reason
    return reason


# --- accepted path ---------------------------------------------------------------


@pytest.mark.parametrize(("alg", "kid"), [("RS384", "rsa-1"), ("ES384", "ec-1")])
def test_valid_token_is_accepted(authenticator, rsa_key, ec_key, replay_store, now, alg, kid):
    key = rsa_key if alg.startswith("RS") else ec_key
    claims = claims_at(now)
    principal = authenticator.authenticate(f"Bearer {sign(key, alg, claims, kid)}", SERVICE_URL)
    assert principal.iss == ISS
    assert principal.jti == claims["jti"]
    assert principal.kid == kid
    assert principal.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    # The replay store keeps the jti until the token could no longer pass, skew included.
    assert replay_store.claimed[(ISS, claims["jti"])] == principal.expires_at + timedelta(
        seconds=SKEW
    )


def test_aud_may_be_a_one_element_list_and_trailing_slash_is_ignored(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now, aud=[SERVICE_URL + "/"]))
    assert authenticator.authenticate(f"Bearer {token}", SERVICE_URL).iss == ISS


def test_discovery_token_accepted_on_discovery(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now, aud=DISCOVERY_URL))
    assert authenticator.authenticate(f"bearer {token}", DISCOVERY_URL).iss == ISS


def test_expiry_within_clock_skew_is_tolerated(authenticator, ec_key, now):
    issued = int(now.timestamp()) - 300
    token = sign(ec_key, "ES384", claims_at(now, iat=issued, exp=issued + 300 - SKEW // 2))
    assert authenticator.authenticate(f"Bearer {token}", SERVICE_URL).iss == ISS


def test_behind_a_proxy_aud_is_checked_against_the_public_base_url(
    rsa_key, ec_key, replay_store, now
):
    trust = parse_trust_config(trust_document(rsa_key, ec_key))
    internal_url = "http://10.0.0.5:8080/cds-services/baclofen-discontinuation"
    proxied = Authenticator(trust, replay_store, public_base_urls=BASE + "/", clock=lambda: now)
    direct = Authenticator(trust, FakeReplayStore(), clock=lambda: now)
    token = sign(ec_key, "ES384", claims_at(now))
    assert proxied.authenticate(f"Bearer {token}", internal_url).iss == ISS
    assert "aud" in rejected(direct, token, internal_url)


def test_token_from_the_keys_helper_is_accepted(tmp_path, replay_store, capsys):
    assert run_keys_cli(["generate", "--alg", "RS384", "--out", str(tmp_path), "--iss", ISS]) == 0
    key_file = str(tmp_path / "private-key.pem")
    assert run_keys_cli(["token", "--key", key_file, "--iss", ISS, "--aud", SERVICE_URL]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    trust = load_trust_config(tmp_path / "trust-snippet.yaml")
    principal = Authenticator(trust, replay_store, BASE).authenticate(f"Bearer {token}",
                                                                      SERVICE_URL)
    assert principal.iss == ISS
    assert jwt.get_unverified_header(token)["alg"] == "RS384"


def test_keys_helper_refuses_to_overwrite_a_private_key(tmp_path, capsys):
    args = ["generate", "--alg", "ES384", "--out", str(tmp_path), "--iss", ISS]
    assert run_keys_cli(args) == 0
    before = (tmp_path / "private-key.pem").read_bytes()
    assert run_keys_cli(args) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "private-key.pem").read_bytes() == before
    assert (tmp_path / "private-key.pem").stat().st_mode & 0o077 == 0


# --- attacks and malformed tokens --------------------------------------------------


def test_alg_none_is_rejected(authenticator, now):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "ec-1"}).encode())
    payload = b64url(json.dumps(claims_at(now)).encode())
    assert "algorithm not allowed" in rejected(authenticator, f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key_as_secret_is_rejected(authenticator, rsa_key, now):
    # Classic key confusion: the attacker HMACs with the server's own public key PEM.
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64url(json.dumps(claims_at(now)).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url(signature)}"
    assert "algorithm not allowed" in rejected(authenticator, token)


def test_token_signed_with_another_key_is_rejected(authenticator, now):
    impostor = ec.generate_private_key(ec.SECP384R1())
    assert "bad signature" in rejected(authenticator, sign(impostor, "ES384", claims_at(now)))


def test_unknown_kid_is_rejected(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now), kid="not-a-known-kid")
    assert "unknown kid" in rejected(authenticator, token)


def test_jku_not_on_the_allow_list_is_rejected_without_fetching(
    authenticator, ec_key, remote_keys, now
):
    token = sign(ec_key, "ES384", claims_at(now), jku="https://attacker.example/jwks.json")
    assert "jku not on the allow-list" in rejected(authenticator, token)
    assert remote_keys.calls == []


def test_expired_token_is_rejected(authenticator, ec_key, now):
    issued = int(now.timestamp()) - 600
    token = sign(ec_key, "ES384", claims_at(now, iat=issued, exp=issued + 600 - SKEW - 1))
    assert "expired" in rejected(authenticator, token)


def test_token_issued_in_the_future_beyond_skew_is_rejected(authenticator, ec_key, now):
    issued = int(now.timestamp()) + SKEW + 60
    token = sign(ec_key, "ES384", claims_at(now, iat=issued, exp=issued + 300))
    assert "future" in rejected(authenticator, token)


def test_token_not_yet_valid_is_rejected(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now, nbf=int(now.timestamp()) + SKEW + 30))
    assert "nbf" in rejected(authenticator, token)


def test_token_lifetime_beyond_the_maximum_is_rejected(authenticator, ec_key, now):
    issued = int(now.timestamp())
    token = sign(ec_key, "ES384", claims_at(now, iat=issued, exp=issued + 3600))
    assert "lifetime" in rejected(authenticator, token)


@pytest.mark.parametrize(
    "aud",
    [
        DISCOVERY_URL,  # a discovery token replayed against a service
        f"{DISCOVERY_URL}/another-service",
        "https://evil.example.org/cds-services/baclofen-discontinuation",
        "http://cds.example.org/cds-services/baclofen-discontinuation",
        [],
        [DISCOVERY_URL],
    ],
)
def test_wrong_audience_is_rejected(authenticator, ec_key, now, aud):
    assert "aud" in rejected(authenticator, sign(ec_key, "ES384", claims_at(now, aud=aud)))


def test_service_token_is_rejected_on_discovery(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now))
    assert "aud" in rejected(authenticator, token, DISCOVERY_URL)


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_missing_required_claim_is_rejected(authenticator, ec_key, now, claim):
    claims = claims_at(now)
    del claims[claim]
    assert f"{claim} claim missing" in rejected(authenticator, sign(ec_key, "ES384", claims))


def test_missing_kid_header_is_rejected(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now), kid=None)
    assert "kid header missing" in rejected(authenticator, token)


def test_replayed_jti_is_rejected(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now))
    authenticator.authenticate(f"Bearer {token}", SERVICE_URL)
    assert "replayed jti" in rejected(authenticator, token)


def test_same_jti_in_a_fresh_token_is_rejected(authenticator, ec_key, now):
    claims = claims_at(now)
    authenticator.authenticate(f"Bearer {sign(ec_key, 'ES384', claims)}", SERVICE_URL)
    again = sign(ec_key, "ES384", {**claims, "iat": claims["iat"] + 1})
    assert "replayed jti" in rejected(authenticator, again)


def test_tampered_payload_is_rejected(authenticator, ec_key, now):
    header, _, signature = sign(ec_key, "ES384", claims_at(now, aud=DISCOVERY_URL)).split(".")
    forged_payload = b64url(json.dumps(claims_at(now)).encode())
    assert "bad signature" in rejected(authenticator, f"{header}.{forged_payload}.{signature}")


def test_untrusted_issuer_is_rejected(authenticator, ec_key, now):
    token = sign(ec_key, "ES384", claims_at(now, iss="https://other-ehr.example.org"))
    assert "issuer not trusted" in rejected(authenticator, token)


def test_algorithm_must_match_the_key(authenticator, ec_key, rsa_key, now):
    p256 = ec.generate_private_key(ec.SECP256R1())
    # An ES256 token naming the P-384 key: curve confusion.
    assert "curve" in rejected(authenticator, sign(p256, "ES256", claims_at(now), kid="ec-1"))
    # An RSA-signed token naming the EC key.
    assert "needs an RSA key" in rejected(
        authenticator, sign(rsa_key, "RS384", claims_at(now), kid="ec-1")
    )


def test_key_pinned_to_an_algorithm_rejects_other_algorithms(
    rsa_key, ec_key, replay_store, now
):
    document = trust_document(rsa_key, ec_key)
    document["issuers"][0]["jwks"]["keys"][0]["alg"] = "RS384"
    authenticator = Authenticator(parse_trust_config(document), replay_store, BASE,
                                  clock=lambda: now)
    token = sign(rsa_key, "RS256", claims_at(now), kid="rsa-1")
    assert "key is for 'RS384'" in rejected(authenticator, token)


def test_algorithm_outside_the_configured_allow_list_is_rejected(
    rsa_key, ec_key, replay_store, now
):
    document = {**trust_document(rsa_key, ec_key), "algorithms": ["ES384"]}
    authenticator = Authenticator(parse_trust_config(document), replay_store, BASE,
                                  clock=lambda: now)
    token = sign(rsa_key, "RS384", claims_at(now), kid="rsa-1")
    assert "algorithm not allowed" in rejected(authenticator, token)


def test_wrong_typ_header_is_rejected(authenticator, ec_key, now):
    assert "typ" in rejected(authenticator, sign(ec_key, "ES384", claims_at(now), typ="at+jwt"))


def test_critical_header_extension_is_rejected(authenticator, ec_key, now):
    # RFC 7515 4.1.11: a `crit` extension we do not understand makes the token invalid.
    rejected(authenticator, sign(ec_key, "ES384", claims_at(now), crit=["exp"]))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "tomorrow"},
        {"iat": True},
        {"jti": ""},
        {"jti": "x" * 300},
        {"tenant": 42},
    ],
)
def test_malformed_claims_are_rejected(authenticator, ec_key, now, claims):
    rejected(authenticator, sign(ec_key, "ES384", claims_at(now, **claims)))


@pytest.mark.parametrize(
    "header_value",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer not.a.jwt",
        "Bearer " + "a" * 9999,
    ],
)
def test_missing_or_malformed_authorization_is_rejected(authenticator, header_value):
    with pytest.raises(AuthError):
        authenticator.authenticate(header_value, SERVICE_URL)


def test_tenant_is_checked_when_configured(rsa_key, ec_key, replay_store, now):
    document = trust_document(rsa_key, ec_key, tenant="hospital-a")
    authenticator = Authenticator(parse_trust_config(document), replay_store, BASE,
                                  clock=lambda: now)
    good = sign(ec_key, "ES384", claims_at(now, tenant="hospital-a"))
    assert authenticator.authenticate(f"Bearer {good}", SERVICE_URL).tenant == "hospital-a"
    other = sign(ec_key, "ES384", claims_at(now, tenant="hospital-b"))
    assert "tenant" in rejected(authenticator, other)
    missing = sign(ec_key, "ES384", claims_at(now))
    assert "tenant" in rejected(authenticator, missing)


# --- issue 15 finding 7: non-finite NumericDates -------------------------------------


def sign_raw_payload(key, payload: bytes, kid: str = "ec-1") -> str:
    """Sign exact payload bytes: json.dumps cannot write 1e400, and writes NaN only as NaN."""
    return jwt.api_jws.encode(payload, key, algorithm="ES384", headers={"typ": "JWT", "kid": kid})


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
# null: found by tests/contract/test_fuzz_boundary.py (exp null was a 500 on main too).
# 400 and 4,000 digits: OverflowError in math.isfinite, a 500 until issue 26.5.
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "1e300", "null",
                                     "9" * 400, "9" * 4000, "-" + "9" * 4000])
def test_non_finite_numeric_dates_are_rejected_not_500(authenticator, ec_key, now, claim,
                                                       literal):
    claims = claims_at(now)
    claims[claim] = "__VALUE__"
    payload = json.dumps(claims).replace('"__VALUE__"', literal).encode()
    reason = rejected(authenticator, sign_raw_payload(ec_key, payload))
    assert claim in reason


def test_iat_nan_does_not_skip_the_lifetime_cap(authenticator, ec_key, now):
    """A ten-year token with iat NaN: every comparison with NaN is false, so the lifetime
    cap used to be skipped and the token accepted."""
    claims = claims_at(now, exp=int(now.timestamp()) + 10 * 365 * 86400)
    claims["iat"] = "__VALUE__"
    payload = json.dumps(claims).replace('"__VALUE__"', "NaN").encode()
    assert "iat" in rejected(authenticator, sign_raw_payload(ec_key, payload))


# --- issue 15 finding 8: aud against configured public URLs only --------------------


def test_aud_is_not_checked_against_the_host_the_request_names(authenticator, ec_key, now):
    """A token minted for another deployment, sent with that deployment's Host header,
    used to pass: the called URL was rebuilt from the request's Host."""
    other = "https://cds.other-hospital.example/cds-services/baclofen-discontinuation"
    token = sign(ec_key, "ES384", claims_at(now, aud=other))
    assert "aud" in rejected(authenticator, token, url=other)


def test_any_of_several_public_base_urls_is_an_accepted_audience(
        rsa_key, ec_key, replay_store, now):
    trust = parse_trust_config(trust_document(rsa_key, ec_key))
    internal = "https://cds.internal.example"
    both = Authenticator(trust, replay_store, (BASE, internal), clock=lambda: now)
    path = "/cds-services/baclofen-discontinuation"
    for base in (BASE, internal):
        token = sign(ec_key, "ES384", claims_at(now, aud=base + path))
        assert both.authenticate(f"Bearer {token}", "http://10.0.0.5:8080" + path).iss == ISS
    token = sign(ec_key, "ES384", claims_at(now, aud="http://10.0.0.5:8080" + path))
    assert "aud" in rejected(both, token, url="http://10.0.0.5:8080" + path)


# --- issue 27.5: aud as an array -------------------------------------------------------

AUTH_DOC = Path(__file__).resolve().parents[2] / "docs" / "authentication.md"
DOC_CALLED_URL = "https://cds.example.org/cds-services/baclofen-order-sign"
DOC_ROW = re.compile(r"^\| `(?P<aud>[\[\"].*)` \| (?P<verdict>yes|no) \|$")


def aud_examples_in_the_doc() -> list[tuple[Any, bool]]:
    rows = [DOC_ROW.match(line) for line in AUTH_DOC.read_text().splitlines()]
    return [(json.loads(m["aud"]), m["verdict"] == "yes") for m in rows if m]


def test_the_aud_table_of_the_authentication_doc_is_what_the_code_does(
        authenticator, ec_key, now):
    """docs/authentication.md said aud "must equal" the URL called while an array
    holding it passed. Each row of the doc's table is run through the verifier."""
    examples = aud_examples_in_the_doc()
    assert any(isinstance(aud, list) for aud, _ in examples), "the doc shows arrays"
    assert {accepted for _, accepted in examples} == {True, False}
    assert BASE == "https://cds.example.org"  # the doc's CDS_PUBLIC_BASE_URL
    for aud, accepted in examples:
        token = f"Bearer {sign(ec_key, 'ES384', claims_at(now, aud=aud))}"
        if accepted:
            assert authenticator.authenticate(token, DOC_CALLED_URL).iss == ISS, aud
        else:
            with pytest.raises(AuthError, match="aud"):
                authenticator.authenticate(token, DOC_CALLED_URL)


@pytest.mark.parametrize("other", [
    "https://other-cds.example.net/cds-services/drug-interactions",  # another service
    DISCOVERY_URL,  # discovery and this service in one token
    "not-a-url",
])
def test_an_aud_array_naming_another_audience_too_is_refused(authenticator, ec_key, now,
                                                             other):
    """A token minted for several audiences could be replayed here by any of them."""
    for aud in ([SERVICE_URL, other], [other, SERVICE_URL]):
        reason = rejected(authenticator, sign(ec_key, "ES384", claims_at(now, aud=aud)))
        assert "other audience" in reason


def test_an_aud_array_may_name_this_endpoint_under_each_public_base_url(
        rsa_key, ec_key, replay_store, now):
    trust = parse_trust_config(trust_document(rsa_key, ec_key))
    aliases = ("https://cds.example.org", "https://cds.hospital.example")
    both = Authenticator(trust, replay_store, aliases, clock=lambda: now)
    path = "/cds-services/baclofen-discontinuation"
    token = sign(ec_key, "ES384", claims_at(now, aud=[base + path for base in aliases]))
    assert both.authenticate(f"Bearer {token}", SERVICE_URL).iss == ISS
