"""Every error leaves as JSON with an OperationOutcome-shaped body; no stack traces."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from cds.errors import ClientError, operation_outcome
from cds.log_bounds import defect_summary

log = logging.getLogger("cds.web")

_HTTP_MESSAGES = {
    404: "There is no such endpoint.",
    405: "That HTTP method is not allowed on this endpoint.",
    413: "The request body is larger than this service accepts.",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ClientError)
    def client_error(error: ClientError):
        response = jsonify(operation_outcome(error.status, error.message, error.location))
        response.status_code = error.status
        retry_after = getattr(error, "retry_after_seconds", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        message = _HTTP_MESSAGES.get(status, error.name)
        response = jsonify(operation_outcome(status, message))
        response.status_code = status
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        # A defect, not the client's fault. Log where it happened, not what it said (its
        # message may quote the request); tell the client nothing more.
        log.error("unhandled error: %s", defect_summary(error))
        return jsonify(operation_outcome(500, "Internal error; it has been logged.")), 500
