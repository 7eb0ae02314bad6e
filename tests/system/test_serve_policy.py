"""How `serve` may listen (issue 15 finding 9 and the control-socket finding)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds.cli import bind_refusal
from cds.config import Settings
from tests.support.clients import ClientKeys, write_trust_file

EXE = str(Path(sys.executable).with_name("baclofen-cds"))


def serve_args(host: str, **flags) -> argparse.Namespace:
    values = {"host": host, "certfile": None, "keyfile": None, "allow_insecure": False,
              "behind_tls_proxy": False, **flags}
    return argparse.Namespace(**values)


AUTH_ON = Settings(auth_enabled=True)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "cds.internal.example"])
def test_plain_http_off_loopback_is_refused_even_with_authentication(host):
    """Finding 9: with authentication on, serve bound any address over plain HTTP."""
    refusal = bind_refusal(serve_args(host), AUTH_ON)
    assert refusal and "plain HTTP" in refusal and "--behind-tls-proxy" in refusal


@pytest.mark.parametrize("flags", [
    {"behind_tls_proxy": True},
    {"certfile": "cert.pem", "keyfile": "key.pem"},
])
def test_tls_or_a_stated_tls_proxy_allows_a_public_address(flags):
    assert bind_refusal(serve_args("0.0.0.0", **flags), AUTH_ON) is None


def test_loopback_needs_no_tls():
    for host in ("127.0.0.1", "localhost", "::1"):
        assert bind_refusal(serve_args(host), AUTH_ON) is None
        assert bind_refusal(serve_args(host), Settings(auth_enabled=False)) is None


def test_serve_refuses_plain_http_on_a_public_address_before_binding(tmp_path):
    trust = write_trust_file(tmp_path, ClientKeys("https://ehr.example.org"))
    env = {**os.environ, "CDS_AUTH": "on", "CDS_TRUST_FILE": str(trust),
           "CDS_PUBLIC_BASE_URL": "https://cds.example.org",
           "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run([EXE, "serve", "--host", "0.0.0.0", "--port", "1"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "--behind-tls-proxy" in result.stderr


def test_serve_opens_no_gunicorn_control_socket(live_server, tmp_path):
    """gunicorn 25.1+ binds $XDG_RUNTIME_DIR/gunicorn.ctl (else ~/.gunicorn/gunicorn.ctl):
    every instance of one user fought over that path, and it can stop the server."""
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    home.mkdir()
    runtime.mkdir()
    live_server({"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)})
    assert not (runtime / "gunicorn.ctl").exists()
    assert not (home / ".gunicorn").exists()
