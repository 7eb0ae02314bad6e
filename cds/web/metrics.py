"""`GET /metrics` and the request hooks that feed it.

The operator endpoints (`/metrics`, `/reports/feedback`) are open only in the local
trial. Otherwise they answer on the operator bind address (CDS_OPERATOR_BIND, a
separate listener an operator keeps off the public network), or with
`Authorization: Bearer <CDS_METRICS_TOKEN>`, and are closed (403) when neither is
configured. A scraper is an operator tool, not a CDS client, so the CDS Hooks JWT
scheme does not apply here.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from cds import metrics
from cds.errors import ClientError, operation_outcome

bp = Blueprint("metrics", __name__)

HOOK_ENDPOINT = "/cds-services/<service_id>"
FEEDBACK_ENDPOINT = "/cds-services/<service_id>/feedback"


def on_operator_bind() -> bool:
    """The request came in on the operator listener (gunicorn sets SERVER_NAME and
    SERVER_PORT from the listening socket, not from the Host header)."""
    operator = current_app.extensions["cds"].settings.operator_bind
    if operator is None:
        return False
    host, port = operator
    environ = request.environ
    return environ.get("SERVER_PORT") == str(port) and environ.get("SERVER_NAME") == host


def operator_token_refusal() -> Response | None:
    """None when the caller may read operator endpoints, else the refusal to send."""
    settings = current_app.extensions["cds"].settings
    if on_operator_bind():
        return None
    expected = settings.metrics_token
    if not expected:
        if settings.local_trial:
            return None
        response = jsonify(operation_outcome(
            403, "Operator endpoints are closed: use the operator bind address, or set "
                 "CDS_METRICS_TOKEN and send it as a bearer token."))
        response.status_code = 403
        return response
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


OPERATOR_BIND_PATHS = frozenset({"/metrics", "/reports/feedback", "/healthz", "/readyz"})


def register_operator_bind(app: Flask) -> None:
    """The operator listener serves the operator endpoints and health checks only."""

    @app.before_request
    def _operator_paths_only():
        if on_operator_bind() and request.path not in OPERATOR_BIND_PATHS:
            raise ClientError(404, "The operator address serves only /metrics, "
                                   "/reports/feedback, /healthz and /readyz.")
        return None


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

