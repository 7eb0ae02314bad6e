"""Prometheus metrics: what operators and governance watch, without any patient data.

Every label value is drawn from a closed set (registered services and hooks, card kinds
from rules/cards.yaml, override-reason codes offered on our own cards), so a client
cannot grow the number of time series by sending made-up values.

Several gunicorn workers: set PROMETHEUS_MULTIPROC_DIR to an empty directory that every
worker can write before the server starts; each worker then writes its samples there and
`GET /metrics` sums them over all workers (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from cds.cards.extension import card_kind

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
NONE = "none"
INDICATORS = frozenset({"info", "warning", "critical"})

# Hook calls take milliseconds with prefetch and seconds when the FHIR server is slow.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "cds_http_requests",
    "HTTP requests answered, by endpoint, CDS service, hook and status code.",
    ["endpoint", "service", "hook", "status"],
)
LATENCY = Histogram(
    "cds_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint, CDS service and hook.",
    ["endpoint", "service", "hook"],
    buckets=_LATENCY_BUCKETS,
)
CARDS = Counter(
    "cds_cards",
    "Cards returned to CDS clients, by service, card kind and indicator.",
    ["service", "kind", "indicator"],
)
FHIR_FETCHES = Counter(
    "cds_fhir_fetches",
    "FHIR-server fallback searches (prefetch keys the client did not send), by result.",
    ["result"],
)
FHIR_FAILURES = Counter(
    "cds_fhir_fetch_failures",
    "FHIR-server fallback searches that failed, by kind of failure.",
    ["reason"],
)
FHIR_TIME = Histogram(
    "cds_fhir_fetch_duration_seconds",
    "Time spent on one FHIR-server fallback search, pages included.",
    buckets=_LATENCY_BUCKETS,
)
CONNECTIONS_DROPPED = Counter(
    "cds_connections_dropped",
    "Connections the service closed at a limit (docs/security.md, Limits): tls_handshake "
    "(not done within 5 s), idle (no request within 5 s), response_not_read (a response "
    "not taken within 15 s), shed (a worker at its maximum of connections closed the one "
    "waiting longest without a request).",
    ["reason"],
)
FEEDBACK = Counter(
    "cds_feedback",
    "Feedback entries stored, by service, outcome and override-reason code.",
    ["service", "outcome", "override_reason"],
)

# FhirFetchError kinds (cds/fhir_client.py): what went wrong, for operators only.
FAILURE_KINDS = frozenset({
    "deadline", "timeout", "unreachable", "blocked_address", "not_allowed", "http_status",
    "too_large", "operation_outcome", "not_fhir", "not_a_bundle",
})

T = TypeVar("T")


def closed_label(value: Any, allowed: Iterable[str]) -> str:
    """The value if it is one we know, else 'other' ('none' when absent)."""
    if value is None or value == "":
        return NONE
    return value if isinstance(value, str) and value in allowed else OTHER


def observe_request(
    endpoint: str, service: str, hook: str, status: int, seconds: float | None
) -> None:
    REQUESTS.labels(endpoint, service, hook, str(status)).inc()
    if seconds is not None:
        LATENCY.labels(endpoint, service, hook).observe(seconds)


def observe_cards(service: str, cards: Iterable[Mapping], known_kinds: Iterable[str]) -> None:
    kinds = frozenset(known_kinds)
    for card in cards:
        if not isinstance(card, Mapping):
            continue
        kind = closed_label(card_kind(dict(card)), kinds)
        indicator = closed_label(card.get("indicator"), INDICATORS)
        CARDS.labels(service, kind, indicator).inc()


def observe_feedback(
    service: str, entries: Iterable[Any], known_reason_codes: Iterable[str]
) -> None:
    """Count stored feedback entries (cds.storage.FeedbackEntry or the same attributes)."""
    codes = frozenset(known_reason_codes)
    for entry in entries:
        reason = closed_label(entry.override_code, codes) if entry.outcome == "overridden" else NONE
        FEEDBACK.labels(service, closed_label(entry.outcome, {"accepted", "overridden"}),
                        reason).inc()


def failure_kind(error: BaseException) -> str:
    kind = getattr(error, "kind", None)
    return kind if kind in FAILURE_KINDS else OTHER


def observe_fhir_fetch(search: Callable[..., T], *args: Any) -> T:
    """Run one fallback search, timing it and counting its result; errors pass through."""
    started = time.perf_counter()
    try:
        result = search(*args)
    except Exception as error:
        FHIR_FETCHES.labels("failed").inc()
        FHIR_FAILURES.labels(failure_kind(error)).inc()
        raise
    finally:
        FHIR_TIME.observe(time.perf_counter() - started)
    FHIR_FETCHES.labels("ok").inc()
    return result


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type, summed over workers in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def reset_multiprocess_dir() -> None:
    """Empty the multiprocess directory; call once in the server before workers start,
    or old counts from an earlier run are added to the new ones.

    The directory is kept private to the service's user (0700; the workers' files are
    created 0600, cds.cli sets the umask): counts of cards and feedback are governance
    data, and the directory may sit in a shared temporary directory. It used to be
    deleted and made again 0755, with 0644 files (issue 26.6). A directory that is a
    symbolic link or belongs to another user is refused, never emptied."""
    directory = multiprocess_dir()
    if not directory:
        return
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = path.lstat()
    if path.is_symlink() or not stat.S_ISDIR(status.st_mode):
        raise RuntimeError(f"{MULTIPROC_ENV} must be a directory, not a link: {directory}")
    if status.st_uid != os.getuid():
        raise RuntimeError(f"{MULTIPROC_ENV} belongs to another user: {directory}")
    path.chmod(0o700)
    for stale in path.glob("*.db"):
        stale.unlink()


def mark_worker_dead(pid: int) -> None:
    """For gunicorn's child_exit hook: drop a dead worker's live gauges (counters stay)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
