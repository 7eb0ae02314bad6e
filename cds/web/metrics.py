"""`GET /metrics` and the request hooks that feed it.

When CDS_METRICS_TOKEN is set, `/metrics` and the governance reports need
`Authorization: Bearer <that token>`; a scraper is an operator tool, not a CDS client,
so the CDS Hooks JWT scheme does not apply here.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from cds import metrics
from cds.errors import operation_outcome

bp = Blueprint("metrics", __name__)

HOOK_ENDPOINT = "/cds-services/<service_id>"
FEEDBACK_ENDPOINT = "/cds-services/<service_id>/feedback"


def operator_token_refusal() -> Response | None:
    """A 401 response unless the operator token (if configured) was presented."""
    expected = current_app.extensions["cds"].settings.metrics_token
    if not expected:
        return None
    presented = request.headers.get("Authorization", "")
    if hmac.compare_digest(presented.encode(), f"Bearer {expected}".encode()):
        return None
    response = jsonify(operation_outcome(401, "This endpoint needs the operator token."))
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="baclofen-cds operator"'
    return response


@bp.get("/metrics")
def scrape():
    refusal = operator_token_refusal()
    if refusal is not None:
        return refusal
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def register_metrics(app: Flask) -> None:
    core = app.extensions["cds"]
    kinds = core.knowledge.cards  # card kind -> CardKind (rules/cards.yaml)
    known_kinds = frozenset(kinds)
    reason_codes = frozenset(str(reason["code"]) for kind in kinds.values()
                             for reason in kind.override_reasons)

    @app.after_request
    def _observe(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        service_id = g.get("service_id")
        hooks = core.registry.hooks_for(service_id) if service_id else None
        service = metrics.closed_label(service_id, [service_id] if hooks else [])
        hook = metrics.closed_label(g.get("hook"), hooks or ())
        started = g.get("started")  # set first thing by cds.web.request_log
        seconds = time.perf_counter() - started if started is not None else None
        metrics.observe_request(endpoint, service, hook, response.status_code, seconds)
        if response.status_code == 200 and hooks:
            if endpoint == HOOK_ENDPOINT:
                metrics.observe_cards(service, g.get("cards") or [], known_kinds)
            elif endpoint == FEEDBACK_ENDPOINT and (g.get("feedback") or {}).get("stored"):
                # Parsed, validated and stored by the handler.
                metrics.observe_feedback(service, g.get("feedback_entries") or [], reason_codes)
        return response

