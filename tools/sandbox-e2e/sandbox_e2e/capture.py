"""Save what the Sandbox sent, as fixtures-to-be: stable URLs, the token decoded, no secrets.

The patients are synthetic (fhir_fixtures records), so nothing needs de-identifying; the
loopback ports (different on every run) become fixed placeholders, and the bearer token is
stored decoded (header and claims, signature dropped) so the file says how the Sandbox signs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sandbox_e2e.browser import Exchange

SERVICE_PLACEHOLDER = "http://127.0.0.1:8080"
FHIR_PLACEHOLDER = "http://127.0.0.1:9090"


def _b64_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def decoded_token(authorization: str | None) -> dict | None:
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    header, payload, _signature = authorization.split(" ", 1)[1].split(".")
    return {"header": _b64_json(header), "claims": _b64_json(payload),
            "signature": "(dropped)"}


def _placeholders(value: Any, replace: dict[str, str]) -> Any:
    text = json.dumps(value)
    for real, placeholder in replace.items():
        text = text.replace(real, placeholder)
    return json.loads(text)


def save(exchange: Exchange, name: str, directory: Path, service_url: str, fhir_url: str,
         what: str) -> Path:
    replace = {service_url: SERVICE_PLACEHOLDER, fhir_url: FHIR_PLACEHOLDER}
    record = {
        "what": what,
        "method": exchange.method,
        "url": SERVICE_PLACEHOLDER + exchange.path,
        "authorization": decoded_token(exchange.authorization),
        "body": exchange.body,
        "responseStatus": exchange.status,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(_placeholders(record, replace), indent=2) + "\n")
    return path
