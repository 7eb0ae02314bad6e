"""One structured JSON log line per request: no identifiers, tokens or resource contents.

Values a client chose (service id from the path, hook, hookInstance) are logged only
when they are what they claim to be: a registered service, a known hook, a UUID.
Anything else is logged as a fixed word, so a client can neither write megabytes into
the log nor put a patient identifier there.
"""

from __future__ import annotations

import json
import logging
import re
import time

from flask import Flask, current_app, g, request

log = logging.getLogger("cds.request")

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NOT_LOGGED = "(not a registered value)"


def loggable_service(service_id: object) -> str | None:
    if service_id is None:
        return None
    registry = current_app.extensions["cds"].registry
    registered = isinstance(service_id, str) and registry.hooks_for(service_id) is not None
    return service_id if registered else NOT_LOGGED


def loggable_hook(hook: object) -> str | None:
    if hook is None:
        return None
    registry = current_app.extensions["cds"].registry
    known = {service.hook for service in registry.services}
    return hook if isinstance(hook, str) and hook in known else NOT_LOGGED


def loggable_hook_instance(hook_instance: object) -> str | None:
    if hook_instance is None:
        return None
    is_uuid = isinstance(hook_instance, str) and UUID.match(hook_instance)
    return hook_instance.lower() if is_uuid else "(not a UUID)"


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
            "service": loggable_service(g.get("service_id")),
            "hook": loggable_hook(g.get("hook")),
            "hookInstance": loggable_hook_instance(g.get("hook_instance")),
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        }
        if g.get("card_kinds") is not None:
            record["cards"] = g.card_kinds
        if g.get("auth_failure"):
            record["auth_failure"] = g.auth_failure
        log.info(json.dumps(record, separators=(",", ":")))
        return response
