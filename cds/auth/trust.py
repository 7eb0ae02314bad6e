"""Trust configuration: which CDS Clients may call us, and with which keys.

Loaded once at start-up from the file named by ``CDS_TRUST_FILE`` and validated
strictly, so a typo fails at start rather than letting a token through later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import jwt
import yaml

from cds.fhir_servers import ServerPattern, ServerPatternError, parse_server_pattern
from cds.net import is_loopback_host

# Asymmetric JWS algorithms only: CDS Hooks forbids `none` and every HMAC algorithm.
PERMITTED_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
)
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS384", "ES384", "RS256", "ES256", "RS512", "ES512", "PS384",
)
DEFAULT_CLOCK_SKEW_SECONDS = 60
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 600
DEFAULT_JWKS_MIN_REFRESH_SECONDS = 60
DEFAULT_JWKS_MAX_AGE_SECONDS = 3600

EC_CURVE_FOR_ALGORITHM = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

# JWK members that only a private (or symmetric) key has: a trust file must never hold them.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class TrustConfigError(ValueError):
    """The trust file is missing, unreadable or invalid; the message names the problem."""


@dataclass(frozen=True)
class TrustedIssuer:
    """One CDS Client we accept tokens from, and where its public keys come from."""

    iss: str
    static_keys: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # kid -> JWK
    jwks_url: str | None = None
    jku_allowed: frozenset[str] = frozenset()
    tenants: frozenset[str] | None = None  # None: tenant not checked
    # FHIR servers this client may have us call back (fhirServer); empty: none.
    fhir_servers: tuple[ServerPattern, ...] = ()

    def allows_jku(self, url: str) -> bool:
        """A `jku` header is only honoured if named in this issuer's configuration."""
        return url in self.jku_allowed or url == self.jwks_url


@dataclass(frozen=True)
class TrustConfig:
    issuers: Mapping[str, TrustedIssuer]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    clock_skew_seconds: int = DEFAULT_CLOCK_SKEW_SECONDS
    max_token_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
    jwks_min_refresh_seconds: int = DEFAULT_JWKS_MIN_REFRESH_SECONDS
    jwks_max_age_seconds: int = DEFAULT_JWKS_MAX_AGE_SECONDS


_URL = {"type": "string", "minLength": 1, "maxLength": 2048}
_JWK = {
    "type": "object",
    "required": ["kty", "kid"],
    "properties": {
        "kty": {"enum": ["RSA", "EC"]},
        "kid": {"type": "string", "minLength": 1, "maxLength": 256},
        "use": {"const": "sig"},
        "alg": {"enum": list(PERMITTED_ALGORITHMS)},
    },
}
_JWK_SET = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "minItems": 1, "items": _JWK}},
}
TRUST_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["issuers"],
    "properties": {
        "algorithms": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": list(PERMITTED_ALGORITHMS)},
        },
        "clock_skew_seconds": {"type": "integer", "minimum": 0, "maximum": 300},
        "max_token_lifetime_seconds": {"type": "integer", "minimum": 1, "maximum": 3600},
        "jwks_min_refresh_seconds": {"type": "integer", "minimum": 1, "maximum": 86400},
        "jwks_max_age_seconds": {"type": "integer", "minimum": 60, "maximum": 604800},
        "issuers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["iss"],
                "properties": {
                    "iss": {"type": "string", "minLength": 1, "maxLength": 2048},
                    "jwks": _JWK_SET,
                    "jwks_file": {"type": "string", "minLength": 1},
                    "jwks_url": _URL,
                    "jku_allowed": {"type": "array", "items": _URL, "uniqueItems": True},
                    "fhir_servers": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                _URL,
                                {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["url"],
                                    "properties": {
                                        "url": _URL,
                                        "private_network": {"type": "boolean"},
                                    },
                                },
                            ]
                        },
                    },
                    "tenant": {
                        "oneOf": [
                            {"type": "string", "minLength": 1},
                            {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "minLength": 1},
                            },
                        ]
                    },
                },
            },
        },
    },
}
_KEY_SOURCES = ("jwks", "jwks_file", "jwks_url")


def load_trust_config(path: str | Path) -> TrustConfig:
    """Read and validate a YAML or JSON trust file; raise TrustConfigError naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustConfigError(f"trust file {path}: cannot be read ({exc.strerror})") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TrustConfigError(f"trust file {path}: not valid YAML/JSON ({exc})") from None
    return parse_trust_config(document, base_dir=path.parent, source=str(path))


def parse_trust_config(
    document: Any, base_dir: Path = Path("."), source: str = "trust config"
) -> TrustConfig:
    """Validate an already-parsed trust document (jwks_file paths resolve against base_dir)."""
    _check_schema(document, source)
    issuers: dict[str, TrustedIssuer] = {}
    for index, entry in enumerate(document["issuers"]):
        where = f"{source}: issuers[{index}] ({entry['iss']!r})"
        if entry["iss"] in issuers:
            raise TrustConfigError(f"{where}: issuer listed twice")
        issuers[entry["iss"]] = _parse_issuer(entry, base_dir, where)
    return TrustConfig(
        issuers=issuers,
        algorithms=tuple(document.get("algorithms", DEFAULT_ALGORITHMS)),
        clock_skew_seconds=document.get("clock_skew_seconds", DEFAULT_CLOCK_SKEW_SECONDS),
        max_token_lifetime_seconds=document.get(
            "max_token_lifetime_seconds", DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
        ),
        jwks_min_refresh_seconds=document.get(
            "jwks_min_refresh_seconds", DEFAULT_JWKS_MIN_REFRESH_SECONDS
        ),
        jwks_max_age_seconds=document.get("jwks_max_age_seconds", DEFAULT_JWKS_MAX_AGE_SECONDS),
    )


def _check_schema(document: Any, source: str) -> None:
    validator = jsonschema.Draft202012Validator(TRUST_FILE_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for error in errors[:5]:
        location = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        message = error.message
        if error.validator == "enum" and "algorithms" in location:
            message += " (only asymmetric algorithms are allowed; never none or HS*)"
        lines.append(f"at {location}: {message}")
    raise TrustConfigError(f"{source}: invalid trust configuration:\n  " + "\n  ".join(lines))


def _parse_issuer(entry: Mapping[str, Any], base_dir: Path, where: str) -> TrustedIssuer:
    sources = [name for name in _KEY_SOURCES if name in entry]
    if len(sources) != 1:
        found = ", ".join(sources) or "none"
        raise TrustConfigError(
            f"{where}: give exactly one of jwks, jwks_file, jwks_url (found: {found})"
        )
    static_keys: dict[str, Mapping[str, Any]] = {}
    if "jwks" in entry:
        static_keys = _index_static_keys(entry["jwks"], where)
    elif "jwks_file" in entry:
        jwk_set = _read_jwks_file(base_dir, entry["jwks_file"], where)
        static_keys = _index_static_keys(jwk_set, where)
    jwks_url = entry.get("jwks_url")
    if jwks_url is not None:
        _check_key_url(jwks_url, f"{where}: jwks_url")
    jku_allowed = frozenset(entry.get("jku_allowed", ()))
    for url in jku_allowed:
        _check_key_url(url, f"{where}: jku_allowed")
    tenant = entry.get("tenant")
    tenants = None if tenant is None else frozenset([tenant] if isinstance(tenant, str) else tenant)
    try:
        fhir_servers = tuple(
            parse_server_pattern(item, f"{where}: fhir_servers[{index}]")
            for index, item in enumerate(entry.get("fhir_servers", ()))
        )
    except ServerPatternError as error:
        raise TrustConfigError(str(error)) from None
    return TrustedIssuer(
        iss=entry["iss"],
        static_keys=static_keys,
        jwks_url=jwks_url,
        jku_allowed=jku_allowed,
        tenants=tenants,
        fhir_servers=fhir_servers,
    )


def _read_jwks_file(base_dir: Path, name: str, where: str) -> Any:
    path = (base_dir / name).resolve()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustConfigError(
            f"{where}: jwks_file {path} cannot be read ({exc.strerror})"
        ) from None
    except json.JSONDecodeError as exc:
        raise TrustConfigError(f"{where}: jwks_file {path} is not JSON ({exc})") from None
    errors = list(jsonschema.Draft202012Validator(_JWK_SET).iter_errors(document))
    if errors:
        raise TrustConfigError(f"{where}: jwks_file {path} is not a JWK Set: {errors[0].message}")
    return document


def _index_static_keys(jwk_set: Mapping[str, Any], where: str) -> dict[str, Mapping[str, Any]]:
    keys: dict[str, Mapping[str, Any]] = {}
    for jwk in jwk_set["keys"]:
        kid = jwk["kid"]
        problem = public_jwk_problem(jwk)
        if problem:
            raise TrustConfigError(f"{where}: key {kid!r}: {problem}")
        if kid in keys:
            raise TrustConfigError(f"{where}: key id {kid!r} appears twice; kids must be unique")
        keys[kid] = jwk
    return keys


def public_jwk_problem(jwk: Mapping[str, Any]) -> str | None:
    """Why this JWK is unusable as a trusted public signing key, or None if it is fine."""
    if PRIVATE_JWK_MEMBERS & set(jwk):
        return "contains private key material; a trust file holds public keys only"
    if jwk.get("kty") not in ("RSA", "EC"):
        return "kty must be RSA or EC"
    if jwk["kty"] == "EC" and jwk.get("crv") not in EC_CURVE_FOR_ALGORITHM.values():
        return "EC keys must use curve P-256, P-384 or P-521"
    try:
        key = jwt.PyJWK(dict(jwk)).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError) as exc:
        return f"not a valid public key ({exc.__class__.__name__})"
    if jwk["kty"] == "RSA" and getattr(key, "key_size", 0) < 2048:
        return "RSA keys must be at least 2048 bits"
    return None


def _check_key_url(url: str, where: str) -> None:
    """Key URLs must be https; plain http is tolerated only on loopback (local tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    raise TrustConfigError(f"{where}: {url!r} must be an https URL (http only on loopback)")

