"""Trusted CDS clients for tests with authentication on: keys, a trust file, fresh JWTs.

One `ClientKeys` per issuer; `write_trust_file` lists several (each with its own
tenants and FHIR-server allow-list), so tests can act as two hospitals at once.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from cds.auth.keys_cli import public_jwk

PUBLIC_BASE = "https://cds.example.org"  # CDS_PUBLIC_BASE_URL of in-process apps


@dataclass
class ClientKeys:
    iss: str
    tenants: tuple[str, ...] = ()
    fhir_servers: list[Any] = field(default_factory=list)  # trust file `fhir_servers` items

    @cached_property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def trust_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "iss": self.iss, "jwks": {"keys": [public_jwk(self.key.public_key(), "k1")]}}
        if self.tenants:
            entry["tenant"] = list(self.tenants)
        if self.fhir_servers:
            entry["fhir_servers"] = self.fhir_servers
        return entry

    def token(self, aud: str, tenant: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + 300,
                "jti": str(uuid.uuid4()), **claims}
        if tenant is not None:
            body["tenant"] = tenant
        return jwt.encode(body, self.key, algorithm="ES256", headers={"kid": "k1"})

    def headers(self, path: str, tenant: str | None = None, base: str = PUBLIC_BASE
                ) -> dict[str, str]:
        """An Authorization header for one call to `path` (each token works once)."""
        return {"Authorization": f"Bearer {self.token(base + path, tenant)}"}


def write_trust_file(directory: Path, *clients: ClientKeys) -> Path:
    path = directory / "trust.json"
    path.write_text(json.dumps({"issuers": [c.trust_entry() for c in clients]}))
    return path
