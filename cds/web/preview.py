"""The card preview page: a person picks a scenario, sends it, and sees the cards.

The page is cds/static/preview.* with its scenario and service lists written in by the
server, so they are there before its script runs (a screenshot or a slow script never
shows empty lists); these routes give the script each scenario, with its relative dates
resolved against the time of the request, and apply an accepted suggestion to the
request's draft orders as a client would (cds.suggestion_clients, the code the tests and
tools/sandbox-e2e use). Fixtures are synthetic and applying a suggestion stores and logs
nothing, so they need no authentication; the hook calls the page makes go through
/cds-services like any client's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify
from markupsafe import escape

from cds.errors import ClientError
from cds.suggestion_clients import CLIENTS, SuggestionError, apply_suggestion
from cds.web.json_body import json_body

bp = Blueprint("preview", __name__)


@bp.get("/")
def page():
    html = (_page_template(current_app.static_folder)
            .replace("<!-- scenario options -->", _scenario_options())
            .replace("<!-- service options -->", _service_options()))
    # Its Content-Security-Policy and other headers: cds/web/security_headers.py.
    return Response(html, mimetype="text/html")


@cache
def _page_template(static_folder: str) -> str:
    return (Path(static_folder) / "preview.html").read_text(encoding="utf-8")


@cache
def _scenario_options() -> str:
    """<optgroup>s of <option>s, the showcase first (cds/fixtures.py groups them)."""
    from cds.fixtures import FIXTURE_DIR, fixture_groups

    groups = []
    for group in fixture_groups():
        options = []
        for name in group.names:
            title = json.loads((FIXTURE_DIR / f"{name}.json").read_text(encoding="utf-8"))["title"]
            options.append(f'<option value="{escape(name)}">{escape(title)} ({escape(name)})'
                           "</option>")
        label = escape(f"{group.name}: {group.about}")
        groups.append(f'<optgroup label="{label}">{"".join(options)}</optgroup>')
    return "".join(groups)


def _service_options() -> str:
    hooks: dict[str, list[str]] = {}
    for service in current_app.extensions["cds"].registry.services:
        hooks.setdefault(service.id, []).append(service.hook)
    return "".join(f'<option value="{escape(sid)}">{escape(sid)} ({escape(", ".join(h))})'
                   "</option>" for sid, h in hooks.items())


@lru_cache(maxsize=1)
def _fixtures() -> dict:
    from cds.fixtures import list_fixtures

    return {path.stem: path for path in list_fixtures()}


@lru_cache(maxsize=1)
def _listing() -> tuple[dict, ...]:
    """The scenarios the page offers, read once per process: their names, titles,
    services and hooks hold no dates. Reading and resolving every fixture on each
    request cost 60-80 ms of CPU on a public endpoint (issue 26.3)."""
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
    return tuple(items)


@bp.get("/preview/fixtures")
def fixture_list():
    return jsonify({"fixtures": list(_listing())})


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
