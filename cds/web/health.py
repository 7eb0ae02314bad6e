from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def alive():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def ready():
    core = current_app.extensions["cds"]
    checks = {
        "rules": core.knowledge is not None and core.engine is not None,
        "database": core.store.check_writable(),
    }
    status = 200 if all(checks.values()) else 503
    return jsonify({"status": "ready" if status == 200 else "not ready", "checks": checks}), status
