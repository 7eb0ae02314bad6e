"""A small open FHIR R4 server on 127.0.0.1 for the Sandbox to read patients from.

It answers what the Sandbox asks (src/retrieve-data-helpers/): `GET /metadata`,
`GET /Patient`, `GET /Patient/<id>`, `GET /Condition?patient=` (the "Treating" list), and
the prefetch searches it resolves itself, `POST /<Type>/_search` (form body) with a
`GET /<Type>?...` fallback. Searches filter by patient only; `_include` of
MedicationRequest:medication adds the Medications referenced. CORS is open: the Sandbox
page is served from another port.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox_e2e.json_handler import JsonCorsHandler

CAPABILITY = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
              "date": "2026-01-01", "fhirVersion": "4.0.1", "format": ["json"]}


def _subject_id(resource: dict) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for key in ("subject", "patient"):
        reference = (resource.get(key) or {}).get("reference")
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference.split("/", 1)[1]
    return None


def searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r.get('id')}", "resource": r}
                      for r in resources]}


class FhirServer:
    """Holds resources by type; `start()` serves them on an ephemeral loopback port."""

    def __init__(self, resources: list[dict]) -> None:
        self.by_type: dict[str, list[dict]] = defaultdict(list)
        for resource in resources:
            self.by_type[resource["resourceType"]].append(resource)
        self.requests: list[str] = []  # "METHOD path", for the run's log
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> FhirServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def answer(self, path: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["metadata"]:
            return 200, CAPABILITY
        if len(parts) == 2 and parts[1] != "_search":
            found = [r for r in self.by_type.get(parts[0], []) if r.get("id") == parts[1]]
            if found:
                return 200, found[0]
            return 404, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-found"}]}
        if len(parts) in (1, 2):
            return 200, self.search(parts[0], params)
        return 404, {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "not-supported"}]}

    def search(self, kind: str, params: dict[str, list[str]]) -> dict:
        patient = (params.get("patient") or params.get("subject") or [None])[0]
        if patient and "/" in patient:
            patient = patient.split("/", 1)[1]
        matches = [r for r in self.by_type.get(kind, [])
                   if patient is None or _subject_id(r) == patient]
        if "MedicationRequest:medication" in params.get("_include", []):
            wanted = {(r.get("medicationReference") or {}).get("reference") for r in matches}
            matches += [m for m in self.by_type.get("Medication", [])
                        if f"Medication/{m.get('id')}" in wanted]
        return searchset(matches)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(JsonCorsHandler):
            content_type = "application/fhir+json"

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                owner.requests.append(f"GET {url.path}")
                self._send(*owner.answer(url.path, parse_qs(url.query)))

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                form = parse_qs(self._body().decode("utf-8", "replace"))
                owner.requests.append(f"POST {url.path}")
                self._send(*owner.answer(url.path, {**parse_qs(url.query), **form}))

        return Handler
