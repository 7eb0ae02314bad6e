"""What runs beside the browser: the Sandbox build as static files, `baclofen-cds serve`,
and a proxy that refuses (and records) any outbound call the service tries to make."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaticSite:
    """The Sandbox's build directory on 127.0.0.1, as any static web server would serve it."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietFiles, directory=str(directory))
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> StaticSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass



class Service:
    """`baclofen-cds serve` on loopback, one worker, its own SQLite file and log."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Service:
        exe = Path(sys.executable).with_name("baclofen-cds")
        command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", *self.args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until stop()
        self.proc = subprocess.Popen(command, env=self.env, cwd=REPO, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baclofen-cds serve exited: {self.log_tail()}")
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"baclofen-cds serve did not become healthy: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def feedback_report(self) -> str:
        """`baclofen-cds feedback-report` against this service's database."""
        exe = Path(sys.executable).with_name("baclofen-cds")
        done = subprocess.run([str(exe), "feedback-report"], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
        return done.stdout + done.stderr
