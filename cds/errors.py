"""Client-facing errors, rendered as OperationOutcome-shaped JSON bodies.

The CDS Hooks 3.0 ballot recommends OperationOutcome for error bodies; 2.0 leaves
them open. Messages describe the request's shape, never its clinical contents.
"""

from __future__ import annotations

from typing import Any

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    408: "timeout",
    412: "not-found",
    413: "too-costly",
    415: "not-supported",
    429: "throttled",
}


class ClientError(Exception):
    """Something about the request that the client must change; never a 5xx."""

    def __init__(self, status: int, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


def operation_outcome(status: int, message: str, location: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": ISSUE_CODES.get(status, "processing" if status < 500 else "exception"),
        "diagnostics": message,
    }
    if location:
        issue["expression"] = [location]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
