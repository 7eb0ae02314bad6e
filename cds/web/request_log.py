"""One structured JSON log line per request: no identifiers, tokens or resource contents."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, g, request

log = logging.getLogger("cds.request")


def register_request_log(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(response):
        if not log.isEnabledFor(logging.INFO):
            return response
        started = g.get("started")
        record = {
            "event": "request",
            "method": request.method,
            "endpoint": request.url_rule.rule if request.url_rule else None,
            "service": g.get("service_id"),
            "hook": g.get("hook"),
            "hookInstance": g.get("hook_instance"),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        }
        if g.get("card_kinds") is not None:
            record["cards"] = g.card_kinds
        if g.get("auth_failure"):
            record["auth_failure"] = g.auth_failure
        log.info(json.dumps(record, separators=(",", ":")))
        return response
