"""The card preview page: a person picks a scenario, sends it, and sees the cards.

The page itself is static (cds/static/preview.*); these routes give it the fixture
scenarios, with their relative dates resolved against the time of the request, and apply
an accepted suggestion to the request's draft orders as a client would
(cds.suggestion_clients, the code the tests and tools/sandbox-e2e use). Fixtures are
synthetic and applying a suggestion stores and logs nothing, so they need no
authentication; the hook calls the page makes go through /cds-services like any client's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from cds.errors import ClientError
from cds.suggestion_clients import CLIENTS, SuggestionError, apply_suggestion
from cds.web.json_body import json_body

bp = Blueprint("preview", __name__)

# The page runs only its own script and styles and talks only to this service, so card
# text that somehow slipped past the page's escaping still could not load or send anything.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@bp.get("/")
def page():
    response = current_app.send_static_file("preview.html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _fixtures() -> dict:
    from cds.fixtures import list_fixtures

    return {path.stem: path for path in list_fixtures()}


@bp.get("/preview/fixtures")
def fixture_list():
    from cds.fixtures import load_fixture

    now = datetime.now(UTC)
    items = []
    for name, path in sorted(_fixtures().items()):
        fixture = load_fixture(path, now)
        items.append({
            "name": name,
            "title": fixture.title,
            "service": fixture.service,
            "hook": fixture.request.get("hook"),
        })
    return jsonify({"fixtures": items})


@bp.get("/preview/fixtures/<name>")
def fixture_request(name: str):
    from cds.fixtures import load_fixture

    path = _fixtures().get(name)
    if path is None:
        raise ClientError(404, "There is no fixture with that name.")
    fixture = load_fixture(path, datetime.now(UTC))
    return jsonify({
        "name": name,
        "title": fixture.title,
        "service": fixture.service,
        "request": fixture.request,
    })


@bp.post("/preview/apply")
def apply():
    """{request, suggestion, client} -> {request}: the CDS Hooks request with its draft
    orders as `client` ("full" or "sandbox") leaves them after accepting `suggestion`."""
    body = json_body()
    if not isinstance(body, dict):
        raise ClientError(400, "Send a JSON object with request, suggestion and client.")
    hook_request, client = body.get("request"), body.get("client", "full")
    if client not in CLIENTS:
        raise ClientError(400, f"client must be one of: {', '.join(CLIENTS)}.")
    context = hook_request.get("context") if isinstance(hook_request, dict) else None
    bundle = context.get("draftOrders") if isinstance(context, dict) else None
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries):
        raise ClientError(400, "The request has no context.draftOrders Bundle of resources "
                               "to apply a suggestion to.")
    try:
        drafts = apply_suggestion([e["resource"] for e in entries], body.get("suggestion"),
                                  client)
    except SuggestionError as exc:
        raise ClientError(400, f"The suggestion cannot be applied: {exc}.") from None
    applied = {**hook_request, "context": {**context, "draftOrders": {
        **bundle, "entry": [{"resource": d} for d in drafts]}}}
    return jsonify({"request": applied})
