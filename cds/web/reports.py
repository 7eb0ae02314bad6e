"""`GET /reports/feedback`: the governance feedback report as JSON, for dashboards."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from cds.errors import ClientError
from cds.report import build_report, parse_since, report_json
from cds.web.metrics import operator_token_refusal

bp = Blueprint("reports", __name__)


@bp.get("/reports/feedback")
def feedback_report():
    refusal = operator_token_refusal()
    if refusal is not None:
        return refusal
    since_text = request.args.get("since")
    try:
        since = parse_since(since_text) if since_text else None
    except ValueError as error:
        raise ClientError(400, str(error), location="since") from None
    core = current_app.extensions["cds"]
    if core.pipeline.recorder is not None:
        core.pipeline.recorder.flush()  # this process's latest cards count too
    report = build_report(core.store, since)
    return jsonify(report_json(report))
