"""Answers of a misbehaving FHIR server on 127.0.0.1, for FakeFhirServer.

Handlers keep FakeFhirServer's signature (request -> (status, body, headers)); a body
may also be a `Streamed`, written piece by piece, optionally with pauses, without a
Content-Length, or cut off half way, as broken servers and proxies do.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator

from tests.support.fake_fhir import FakeFhirServer, Handler, SeenRequest, Streamed, bundle

FHIR_JSON = "application/fhir+json"


# The fault-capable server is the fake server itself (streamed bodies live there).
FaultyFhirServer = FakeFhirServer


def dropped() -> Handler:
    """Accept the request, then close the connection without a word."""
    return lambda _req: (-1, b"", {})


def status_answer(status: int) -> Handler:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "processing"}]}
    return lambda _req: (status, outcome, {})


def raw_answer(payload: bytes, content_type: str = FHIR_JSON) -> Handler:
    return lambda _req: (200, payload, {"Content-Type": content_type})


def sleeping(seconds: float, then: Handler) -> Handler:
    def handler(req: SeenRequest):
        time.sleep(seconds)
        return then(req)

    return handler


def dripping(byte_every: float, for_seconds: float) -> Handler:
    """Valid-looking JSON one byte at a time: each read succeeds, the whole never ends."""

    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        stop = time.monotonic() + for_seconds
        while time.monotonic() < stop:
            time.sleep(byte_every)
            yield b" "

    return lambda _req: (200, Streamed(chunks), {})


def huge_body(total_bytes: int, declare_length: bool) -> Handler:
    """A Bundle padded to `total_bytes`, with or without an honest Content-Length."""
    head = b'{"resourceType": "Bundle", "type": "searchset", "entry": [], "padding": "'
    tail = b'"}'
    filler = total_bytes - len(head) - len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"x" * 65536
        left = filler
        while left > 0:
            yield block[: min(left, len(block))]
            left -= len(block)
        yield tail

    length = total_bytes if declare_length else None
    return lambda _req: (200, Streamed(chunks, content_length=length), {})


def gzipped(body: dict) -> Handler:
    """An honest answer, gzip-encoded as many FHIR servers send it."""
    payload = gzip.compress(json.dumps(body).encode())
    return lambda _req: (200, payload, {"Content-Encoding": "gzip"})


def gzip_bomb(expanded_bytes: int) -> Handler:
    """A small gzip body that expands to `expanded_bytes` of JSON: the size cap must
    count what is decoded, not what crossed the wire."""
    head = b'{"resourceType": "Bundle", "type": "searchset", "padding": "'
    raw = head + b"x" * (expanded_bytes - len(head) - 2) + b'"}'
    payload = gzip.compress(raw, compresslevel=9)
    return lambda _req: (200, payload, {"Content-Encoding": "gzip"})


def truncated_body(promised: int = 10_000) -> Handler:
    """Promise `promised` bytes, send a few, hang up."""

    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Bundle", "ty'

    return lambda _req: (200, Streamed(chunks, content_length=promised), {})


def endless_pages(base_url: Callable[[], str], path: str, delay: float = 0.0) -> Handler:
    """Every page of `path` links to a next page of `path`, for ever."""
    counter = iter(range(10**9))

    def handler(_req: SeenRequest):
        if delay:
            time.sleep(delay)
        return 200, bundle([], next_url=f"{base_url()}{path}?page={next(counter)}"), {}

    return handler


def redirect_elsewhere() -> Handler:
    return lambda _req: (302, b"", {"Location": "http://127.0.0.2:9/steal-token"})
