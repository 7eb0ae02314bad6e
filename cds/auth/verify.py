"""Verify a CDS Client's JWT (CDS Hooks 2.0 "Trusting CDS Clients", RFC 8725).

Order matters: everything read before the signature is checked (header, `iss`)
is used only to choose a key, never trusted. Claims are trusted only after the
signature verifies, and the `jti` is claimed last so a bad token cannot burn
a good token's id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import jwt

from cds.auth.jwks import JwksCache, JwksUnavailable
from cds.auth.trust import EC_CURVE_FOR_ALGORITHM, TrustConfig, TrustedIssuer

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 8192  # real client tokens are well under 2 KB
MAX_JTI_CHARS = 255  # fits the replay store's column
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class AuthError(Exception):
    """Authentication failed. `reason` is for server logs only: never sent to the client,
    never contains the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReplayStore(Protocol):
    def claim_jti(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True if (iss, jti) was not seen before and is now recorded until expires_at."""


@dataclass(frozen=True)
class Principal:
    """The authenticated CDS Client behind a request."""

    iss: str
    tenant: str | None
    jti: str
    kid: str
    expires_at: datetime


class Authenticator:
    def __init__(
        self,
        trust: TrustConfig,
        replay_store: ReplayStore,
        public_base_urls: Sequence[str] | str = (),
        jwks_cache: JwksCache | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.trust = trust
        self.replay_store = replay_store
        # `aud` is checked against these only, never against the request's Host header:
        # a client could otherwise replay a token minted for another deployment by
        # sending that deployment's Host.
        bases = [public_base_urls] if isinstance(public_base_urls, str) else public_base_urls
        self.public_base_urls = tuple(b.rstrip("/") for b in bases)
        self.jwks_cache = jwks_cache or JwksCache(
            min_refresh_seconds=trust.jwks_min_refresh_seconds,
            max_age_seconds=trust.jwks_max_age_seconds,
        )
        self._clock = clock

    def authenticate(self, authorization_header: str | None, called_url: str) -> Principal:
        """Return who is calling, or raise AuthError. Every failure is the same 401 outside."""
        token = _bearer_token(authorization_header)
        header = self._checked_header(token)
        unverified_iss = _unverified_issuer(token)
        issuer = self.trust.issuers.get(unverified_iss)
        if issuer is None:
            raise AuthError(f"issuer not trusted: {_loggable(unverified_iss)}")
        key = self._verification_key(issuer, header)
        claims = _verified_claims(token, key, header["alg"])
        if claims["iss"] != issuer.iss:  # cannot differ for one token; belt and braces
            raise AuthError("issuer changed between reads")
        self._check_audience(claims["aud"], called_url)
        expires_at = self._check_times(claims)
        tenant = _check_tenant(issuer, claims.get("tenant"))
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise AuthError("jti must be a non-empty string of at most 255 characters")
        skew = timedelta(seconds=self.trust.clock_skew_seconds)
        if not self.replay_store.claim_jti(issuer.iss, jti, expires_at + skew):
            raise AuthError(f"replayed jti from {_loggable(issuer.iss)}")
        return Principal(
            iss=issuer.iss, tenant=tenant, jti=jti, kid=header["kid"], expires_at=expires_at
        )

    def _checked_header(self, token: str) -> Mapping[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token header") from None
        alg = header.get("alg")
        if alg not in self.trust.algorithms:
            raise AuthError(f"algorithm not allowed: {_loggable(alg)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("kid header missing")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthError(f"typ header must be JWT, got {_loggable(typ)}")
        if "crit" in header:  # RFC 7515 4.1.11: we understand no extensions, so must reject
            raise AuthError("crit header not supported")
        jku = header.get("jku")
        if jku is not None and not isinstance(jku, str):
            raise AuthError("jku header must be a string")
        return header

    def _verification_key(self, issuer: TrustedIssuer, header: Mapping[str, Any]) -> jwt.PyJWK:
        """Key selection: a configured key whose kid matches wins, without any fetch; a
        remote set (the allow-listed `jku`, else the issuer's jwks_url) is asked only for
        a kid not configured locally. So a site without outbound access can trust a client
        that always names its public JWK Set in `jku`, such as the CDS Hooks Sandbox."""
        kid, alg, jku = header["kid"], header["alg"], header.get("jku")
        if jku is not None and not issuer.allows_jku(jku):
            # Refused even when the kid is known: the token points at keys we never agreed on.
            raise AuthError(f"jku not on the allow-list of {_loggable(issuer.iss)}")
        jwk = issuer.static_keys.get(kid)
        remote_url = jku if jku is not None else issuer.jwks_url
        if jwk is None and remote_url is not None:
            jwk = self._remote_key(remote_url, kid)
        if jwk is None:
            raise AuthError(f"unknown kid {_loggable(kid)} for {_loggable(issuer.iss)}")
        return _key_for_algorithm(jwk, alg)

    def _remote_key(self, url: str, kid: str) -> Mapping[str, Any] | None:
        try:
            return self.jwks_cache.find_key(url, kid)
        except JwksUnavailable:
            raise AuthError(f"JWK Set unavailable: {url}") from None

    def _check_audience(self, aud: Any, called_url: str) -> None:
        """`aud` is the endpoint called (CDS Hooks 2.0): a string, or an array (RFC 7519
        4.1.3) whose every entry names that endpoint, on any of our public base URLs.
        RFC 7519 only asks that we find ourselves in an array; an entry naming anyone
        else is refused too, so that another audience of the same token (another
        service, or our discovery endpoint) cannot replay it here."""
        candidates = [aud] if isinstance(aud, str) else aud
        if (not isinstance(candidates, list) or not candidates
                or not all(isinstance(a, str) for a in candidates)):
            raise AuthError("aud must be a string or a non-empty list of strings")
        expected = {normalise_url(url) for url in self.expected_audiences(called_url)}
        if not expected:
            raise AuthError("no public base URL is configured to check aud against")
        named = {normalise_url(a) for a in candidates}
        path = _loggable(urlsplit(called_url).path)
        if expected.isdisjoint(named):
            raise AuthError(f"aud does not name a public URL of this service for path {path}")
        if not named <= expected:
            raise AuthError(f"aud also names {len(named - expected)} other audience(s) "
                            f"besides this service's URL for path {path}")

    def expected_audiences(self, called_url: str) -> list[str]:
        """The URLs a client may have called: each configured public base URL plus the
        path the application sees (scheme and host of the request are not trusted)."""
        path = urlsplit(called_url).path
        return [base + path for base in self.public_base_urls]

    def _check_times(self, claims: Mapping[str, Any]) -> datetime:
        now = self._clock().timestamp()
        skew = self.trust.clock_skew_seconds
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
        for name in ("exp", "iat", "nbf"):
            if name in claims:  # present means a number: null is no more a date than "x"
                _check_numeric_date(name, claims[name])
        if exp <= now - skew:
            raise AuthError("token expired")
        if iat > now + skew:
            raise AuthError("token issued in the future")
        if nbf is not None and nbf > now + skew:
            raise AuthError("token not yet valid (nbf)")
        if exp <= iat:
            raise AuthError("exp is not after iat")
        if exp - iat > self.trust.max_token_lifetime_seconds:
            raise AuthError(
                f"token lifetime {int(exp - iat)} s exceeds the maximum "
                f"{self.trust.max_token_lifetime_seconds} s"
            )
        return datetime.fromtimestamp(exp, UTC)


# NumericDates beyond this (the year 5138) are nonsense for a token that lives minutes,
# and would overflow datetime; the bound also keeps float arithmetic exact enough.
MAX_NUMERIC_DATE = 10**11


def _check_numeric_date(name: str, value: Any) -> None:
    """A finite number of seconds in a sane range. The JSON parser behind PyJWT reads NaN,
    Infinity and 1e400 (as inf); every comparison with NaN is false, so an `iat` of NaN
    would slip past the lifetime cap, and inf overflows datetime (a 500)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"{name} must be a number")
    # An integer first, by its magnitude: math.isfinite of a 400-digit integer raises
    # OverflowError (a 500 until issue 26.5).
    if (isinstance(value, int) and abs(value) > MAX_NUMERIC_DATE) or (
            isinstance(value, float) and not math.isfinite(value)) \
            or abs(value) > MAX_NUMERIC_DATE:
        raise AuthError(f"{name} must be a finite number of seconds since 1970")


def normalise_url(url: str) -> str:
    """Compare URLs as strings, forgiving only case in scheme/host and a trailing slash."""
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    default_port = {"https": ":443", "http": ":80"}.get(parts.scheme.lower())
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, ""))


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise AuthError("no Authorization header")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("Authorization scheme is not Bearer")
    token = token.strip()
    if not token:
        raise AuthError("empty bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("bearer token too long")
    return token


def _unverified_issuer(token: str) -> str:
    """Read `iss` only to choose keys; it is trusted only once the signature verifies."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("malformed token payload") from None
    if not isinstance(payload, dict) or "iss" not in payload:
        raise AuthError("iss claim missing")
    if not isinstance(payload["iss"], str):
        raise AuthError("iss must be a string")
    return payload["iss"]


def _key_for_algorithm(jwk: Mapping[str, Any], alg: str) -> jwt.PyJWK:
    """Bind the key to the header's algorithm, refusing mismatches (key confusion)."""
    if jwk.get("alg") is not None and jwk["alg"] != alg:
        raise AuthError(f"key is for {_loggable(jwk['alg'])}, token says {alg}")
    family = "EC" if alg.startswith("ES") else "RSA"
    if jwk.get("kty") != family:
        raise AuthError(f"{alg} needs an {family} key, kid is {_loggable(jwk.get('kty'))}")
    if family == "EC" and jwk.get("crv") != EC_CURVE_FOR_ALGORITHM[alg]:
        raise AuthError(f"{alg} needs curve {EC_CURVE_FOR_ALGORITHM[alg]}")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg)
    except jwt.PyJWTError:
        raise AuthError("key cannot be used") from None


def _verified_claims(token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
    # PyJWT checks the signature and alg; we check the time and audience claims
    # ourselves, against an injectable clock and the CDS Hooks audience rule.
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise AuthError("bad signature") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"token rejected ({exc.__class__.__name__})") from None
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise AuthError(f"{name} claim missing")
    return claims


def _check_tenant(issuer: TrustedIssuer, tenant: Any) -> str | None:
    if tenant is not None and not isinstance(tenant, str):
        raise AuthError("tenant must be a string")
    if issuer.tenants is not None and tenant not in issuer.tenants:
        raise AuthError(f"tenant {_loggable(tenant)} not allowed for {_loggable(issuer.iss)}")
    return tenant


def _loggable(value: Any) -> str:
    """A short, quoted form of an untrusted value, safe to put in one log line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
