"""GET /handout/<token>?lang=<code>: the patient handout a card links to.

No authentication: the sealed token is the only key, as a patient or a clinician opens
the page from a card or a sent link. A link that is expired, changed, malformed, or for
a language this site no longer offers gets a short HTML page with a 4xx status, never a
stack trace or a 500; nothing from the token is logged (the request log records the
route's pattern, not the path).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request
from werkzeug.routing import BaseConverter

from cds.handout.link import LinkError


class AnyText(BaseConverter):
    """Any text, slashes and line breaks included: a mangled link (a pasted line break, a
    doubled slash) still reaches the handout route and gets its clear page, not a bare 404."""

    regex = "(?s:.*)"
    part_isolating = False


bp = Blueprint("handout", __name__)
bp.record_once(lambda state: state.app.url_map.converters.setdefault("anytext", AnyText))

_HEADERS = {
    # Health information without a name still stays out of shared caches and indexes.
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


@bp.get("/handout", defaults={"token": ""})
@bp.get("/handout/<anytext:token>")
def handout(token: str):
    handouts = current_app.extensions["cds"].handouts
    requested = request.args.get("lang")
    if handouts is None:
        return Response("Patient handouts are turned off on this service.", status=404,
                        mimetype="text/plain", headers=_HEADERS)
    try:
        opened = handouts.sealer.open(token, requested)
        if handouts.page.catalog.language(opened.language) is None:
            raise LinkError("language", 404)
        html = handouts.page.render(opened, datetime.now(UTC).date())
    except LinkError as error:
        html = handouts.page.render_error(requested, error.reason)
        return Response(html, status=error.status, mimetype="text/html", headers=_HEADERS)
    return Response(html, mimetype="text/html", headers=_HEADERS)
