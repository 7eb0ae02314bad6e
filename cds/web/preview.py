"""The card preview page: a person picks a scenario, sends it, and sees the cards.

The page itself is static (cds/static/preview.*); these routes give it the fixture
scenarios, with their relative dates resolved against the time of the request.
Fixtures are synthetic, so they need no authentication; the hook calls the page makes
go through /cds-services like any client's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from flask import Blueprint, current_app, jsonify

from cds.errors import ClientError

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
