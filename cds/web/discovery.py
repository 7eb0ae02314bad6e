from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery():
    return jsonify(current_app.extensions["cds"].registry.discovery())
