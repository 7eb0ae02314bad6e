"""The card preview page: a person picks a scenario, sends it, and sees the cards.

The page itself is static (cds/static/preview.*); these routes give it the fixture
scenarios, with their relative dates resolved against the time of the request.
Fixtures are synthetic, so they need no authentication; the hook calls the page makes
go through /cds-services like any client's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from cds.errors import ClientError

bp = Blueprint("preview", __name__)


@bp.get("/")
def page():
    # Its Content-Security-Policy and other headers: cds/web/security_headers.py.
    return current_app.send_static_file("preview.html")


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
