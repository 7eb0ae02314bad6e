"""Which key verifies a token: a configured key first, a remote set only for unknown kids.

The CDS Hooks Sandbox always names its public JWK Set in `jku`; a site without outbound
access must still be able to trust it from a key in its trust file.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds.auth import Authenticator, AuthError, load_trust_config
from cds.auth.keys_cli import public_jwk
from cds.auth.trust import parse_trust_config
from tests.support import paths
from tests.support.sandbox import SANDBOX_JKU, sandbox_jwt

ISS = "https://ehr.example.org"
BASE = "https://cds.example.org"  # the public base URL aud is checked against
URL = f"{BASE}/cds-services/baclofen-order-sign"
JKU = "https://keys.ehr.example.org/jwks.json"


class RecordingKeySets:
    """A JWK Set cache serving fixed sets by URL and recording every lookup."""

    def __init__(self, sets: dict[str, dict[str, Any]] | None = None) -> None:
        self.sets = sets or {}
        self.calls: list[tuple[str, str]] = []

    def find_key(self, url: str, kid: str) -> dict[str, Any] | None:
        self.calls.append((url, kid))
        return self.sets.get(url, {}).get(kid)


class AcceptAll:
    def claim_jti(self, iss: str, jti: str, expires_at: datetime) -> bool:
        return True


@pytest.fixture(scope="module")
def local_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def remote_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def token(key, kid: str, jku: str | None = None) -> str:
    now = int(datetime.now(UTC).timestamp())
    header = {"typ": "JWT", "kid": kid, **({"jku": jku} if jku else {})}
    claims = {"iss": ISS, "aud": URL, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES384", headers=header)


def authenticator(issuer: dict[str, Any], key_sets: RecordingKeySets) -> Authenticator:
    trust = parse_trust_config({"issuers": [{"iss": ISS, **issuer}]})
    return Authenticator(trust, AcceptAll(), BASE, jwks_cache=key_sets)


def local_issuer(local_key, **extra: Any) -> dict[str, Any]:
    return {"jwks": {"keys": [public_jwk(local_key.public_key(), "local-1")]}, **extra}


def test_configured_kid_is_used_without_fetching_the_allow_listed_jku(local_key):
    key_sets = RecordingKeySets()
    auth = authenticator(local_issuer(local_key, jku_allowed=[JKU]), key_sets)
    principal = auth.authenticate(f"Bearer {token(local_key, 'local-1', JKU)}", URL)
    assert principal.kid == "local-1"
    assert key_sets.calls == []


def test_unknown_kid_fetches_the_allow_listed_jku(local_key, remote_key):
    key_sets = RecordingKeySets({JKU: {"remote-1": public_jwk(remote_key.public_key(),
                                                               "remote-1")}})
    auth = authenticator(local_issuer(local_key, jku_allowed=[JKU]), key_sets)
    principal = auth.authenticate(f"Bearer {token(remote_key, 'remote-1', JKU)}", URL)
    assert principal.kid == "remote-1"
    assert key_sets.calls == [(JKU, "remote-1")]


def test_jku_off_the_allow_list_is_refused_even_for_a_configured_kid(local_key):
    key_sets = RecordingKeySets()
    auth = authenticator(local_issuer(local_key, jku_allowed=[JKU]), key_sets)
    forged_jku = "https://attacker.example/jwks.json"
    with pytest.raises(AuthError, match="jku not on the allow-list"):
        auth.authenticate(f"Bearer {token(local_key, 'local-1', forged_jku)}", URL)
    assert key_sets.calls == []


def test_configured_kid_signed_by_another_key_is_refused_without_fetching(
        local_key, remote_key):
    # The configured key decides: a remote set cannot override it for the same kid.
    key_sets = RecordingKeySets({JKU: {"local-1": public_jwk(remote_key.public_key(),
                                                              "local-1")}})
    auth = authenticator(local_issuer(local_key, jku_allowed=[JKU]), key_sets)
    with pytest.raises(AuthError, match="bad signature"):
        auth.authenticate(f"Bearer {token(remote_key, 'local-1', JKU)}", URL)
    assert key_sets.calls == []


def test_without_jku_an_unknown_kid_is_looked_up_at_the_issuers_jwks_url(remote_key):
    key_sets = RecordingKeySets({JKU: {"remote-1": public_jwk(remote_key.public_key(),
                                                               "remote-1")}})
    auth = authenticator({"jwks_url": JKU}, key_sets)
    assert auth.authenticate(f"Bearer {token(remote_key, 'remote-1')}", URL).kid == "remote-1"
    assert key_sets.calls == [(JKU, "remote-1")]


def test_the_sandbox_entry_in_docs_accepts_the_sandboxs_own_token_offline():
    """Signed exactly as the Sandbox signs (its real public jku URL): nothing fetched."""
    trust = load_trust_config(paths.ROOT / "docs" / "trust-sandbox.yaml")
    key_sets = RecordingKeySets()
    auth = Authenticator(trust, AcceptAll(), BASE, jwks_cache=key_sets)
    sandbox_token = sandbox_jwt(URL)
    assert jwt.get_unverified_header(sandbox_token)["jku"] == SANDBOX_JKU
    principal = auth.authenticate(f"Bearer {sandbox_token}", URL)
    assert principal.iss == "https://sandbox.cds-hooks.org"
    assert key_sets.calls == []
