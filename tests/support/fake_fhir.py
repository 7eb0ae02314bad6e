"""A scriptable FHIR server on 127.0.0.1 for fallback and fault tests."""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# A route answers (status, body, extra headers) for a request path; the body is bytes,
# anything JSON-able, or a Streamed answer; status -1 drops the connection unanswered.
Handler = Callable[["SeenRequest"], tuple[int, Any, dict[str, str]]]


@dataclass
class Streamed:
    """An answer written piece by piece (pauses, no Content-Length, or cut off)."""

    chunks: Callable[[], Iterator[bytes]]
    content_length: int | None = None  # None: no length, the end is the connection closing


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # The service hangs up on slow answers at its deadline: expected, not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class FakeFhirServer:
    routes: dict[str, Handler] = field(default_factory=dict)
    default: Handler | None = None
    seen: list[SeenRequest] = field(default_factory=list)
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve https

    def __post_init__(self) -> None:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes; without this, Nagle plus the
            # client's delayed ACK costs ~40 ms per answer, which fast-page tests notice.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                seen = SeenRequest(self.path, {k.lower(): v for k, v in self.headers.items()})
                owner.seen.append(seen)
                handler = owner._match(self.path)
                if handler is None:
                    status, body, headers = 404, {"resourceType": "OperationOutcome"}, {}
                else:
                    status, body, headers = handler(seen)
                try:
                    if status == -1:  # drop the connection without an answer
                        self.close_connection = True
                        return
                    self.send_response(status)
                    content_type = headers.pop("Content-Type", "application/fhir+json")
                    self.send_header("Content-Type", content_type)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if isinstance(body, Streamed):
                        self._stream(body)
                        return
                    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _stream(self, body: Streamed) -> None:
                if body.content_length is not None:
                    self.send_header("Content-Length", str(body.content_length))
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for chunk in body.chunks():
                    self.wfile.write(chunk)
                    self.wfile.flush()

        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _match(self, path: str) -> Handler | None:
        for prefix, handler in self.routes.items():
            if path.startswith(prefix):
                return handler
        return self.default

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> FakeFhirServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def json_answer(body: Any, status: int = 200) -> Handler:
    return lambda _req: (status, body, {})


def slow_answer(seconds: float, body: Any) -> Handler:
    def handler(_req: SeenRequest):
        time.sleep(seconds)
        return 200, body, {}

    return handler


def bundle(resources: list[dict], next_url: str | None = None) -> dict:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        out["link"] = [{"relation": "next", "url": next_url}]
    return out
