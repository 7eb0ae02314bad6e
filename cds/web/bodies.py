"""Read a JSON request body with the checks every POST endpoint shares."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from cds.errors import ClientError
from cds.jsonbody import parse_json_body

JSON_TYPES = ("application/json", "application/fhir+json")


def json_body() -> Any:
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
        raise ClientError(415, "Send the request as JSON (Content-Type: application/json).")
    raw = request.get_data(cache=False)  # Werkzeug refuses a declared length over the limit
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit without an error; one more byte tells
        # whether it was longer (Werkzeug then raises 413 Request Entity Too Large).
        request.stream.read(1)
    if not raw:
        raise ClientError(400, "The request body is empty; a JSON object is required.")
    settings = current_app.extensions["cds"].settings
    return parse_json_body(raw, settings.max_json_depth)
