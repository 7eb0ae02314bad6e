"""Start `baclofen-cds serve` in a subprocess on loopback, as a user would run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, env: dict[str, str], workers: int = 1, args: list[str] | None = None,
                 tls_cert: Path | None = None):
        self.port = free_port()
        self.verify: str | bool = str(tls_cert) if tls_cert else True
        scheme = "https" if tls_cert else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        if self.env.get("CDS_AUTH", "on") != "off":
            # As an operator configures it: the URL clients call, which each token's aud names.
            self.env.setdefault("CDS_PUBLIC_BASE_URL", self.base_url)
        self.workers = workers
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self, log_path: Path, timeout: float = 30.0) -> LiveServer:
        self.log_path = log_path
        exe = Path(sys.executable).with_name("baclofen-cds")
        command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers), *self.args]
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early: {log_path.read_text()[-2000:]}")
            try:
                health = requests.get(self.base_url + "/healthz", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy in time")

    def stop(self, sig: int | None = None) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()
