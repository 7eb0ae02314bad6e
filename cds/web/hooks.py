from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from cds.errors import ClientError
from cds.feedback import FeedbackPolicy, record_feedback
from cds.handout.service import link_base_url
from cds.storage import StorageError
from cds.web.admission import Turns
from cds.web.auth import current_client
from cds.web.json_body import json_body, parse_request_json, read_json_body

bp = Blueprint("hooks", __name__)


@bp.post("/cds-services/<service_id>")
def invoke(service_id: str):
    core = current_app.extensions["cds"]
    g.service_id = service_id
    raw = read_json_body()
    turns = Turns(len(raw))  # small calls before large ones (cds/web/admission.py)
    turns.wait()
    try:
        body = parse_request_json(raw)
        if isinstance(body, dict):
            g.hook = body.get("hook") if isinstance(body.get("hook"), str) else None
            g.hook_instance = (
                body.get("hookInstance") if isinstance(body.get("hookInstance"), str) else None
            )
        outcome = core.pipeline.call(service_id, body, current_client(),
                                     handout_base_url=link_base_url(core.settings,
                                                                    request.url_root),
                                     between_steps=turns.wait,
                                     before_network=turns.release)
    finally:
        turns.release()
    g.card_kinds = outcome.card_kinds
    g.cards = outcome.response["cards"]  # for the metrics hook, without re-reading the body
    return jsonify(outcome.response)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str):
    core = current_app.extensions["cds"]
    g.service_id = service_id
    if core.registry.hooks_for(service_id) is None:
        raise ClientError(404, f"There is no CDS service with id '{service_id}'.")
    body = json_body()
    if core.pipeline.recorder is not None:
        # This process's cards are written in the background; feedback is checked
        # against them, so let the last few milliseconds' cards land first.
        core.pipeline.recorder.flush(timeout=1.0)
    policy = FeedbackPolicy(core.settings.feedback_quota_per_hour,
                            core.settings.feedback_bytes_per_hour)
    try:
        result, g.feedback_entries = record_feedback(core.store, service_id, body,
                                                     current_client(), policy)
    except StorageError as error:
        # Not stored, so not acknowledged: the client retries later.
        raise ClientError(503, "Feedback could not be stored right now; please retry.") from error
    g.feedback = result
    return jsonify(result)
