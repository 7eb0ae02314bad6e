"""A loopback HTTP(S) proxy that refuses everything and remembers what was asked.

Point a process's HTTPS_PROXY/HTTP_PROXY at it (NO_PROXY=127.0.0.1,localhost) to prove it
made no outbound call: `requests` sends every non-loopback URL here first.
"""

from __future__ import annotations

import socket
import threading


class OutboundTrap:
    def __init__(self) -> None:
        self.requests: list[str] = []  # first line of each request, e.g. "CONNECT host:443 ..."
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def proxy_env(self) -> dict[str, str]:
        return {"HTTPS_PROXY": self.url, "HTTP_PROXY": self.url, "https_proxy": self.url,
                "http_proxy": self.url, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"}

    def start(self) -> OutboundTrap:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                    self.requests.append(first.decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                except OSError:
                    pass

    def stop(self) -> None:
        self._sock.close()
