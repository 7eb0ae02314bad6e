"""Issue 15, low findings at the service boundary: CORS, request logs, the SQLite file."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from cds.app import create_app
from cds.config import ConfigError, Settings
from cds.storage import Store
from tests.support.clients import PUBLIC_BASE, ClientKeys, write_trust_file
from tests.support.requests import hook_request

SERVICE = "/cds-services/baclofen-patient-view"


def auth_on_settings(tmp_path: Path, **overrides) -> Settings:
    trust = write_trust_file(tmp_path, ClientKeys("https://ehr.example.org"))
    return Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}", auth_enabled=True,
                    trust_file=str(trust), public_base_urls=(PUBLIC_BASE,), **overrides)


def preflight(client, origin: str):
    return client.options(SERVICE, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_any_origin_only_in_the_local_trial(client, tmp_path):
    """The local trial (auth off, loopback) answers any origin; with authentication on,
    nothing is allowed unless configured (it used to reflect any origin)."""
    assert preflight(client, "https://anywhere.example").headers[
        "Access-Control-Allow-Origin"] in ("*", "https://anywhere.example")
    closed = create_app(auth_on_settings(tmp_path)).test_client()
    assert "Access-Control-Allow-Origin" not in preflight(closed, "https://evil.example").headers


def test_configured_origins_only_when_authentication_is_on(tmp_path):
    sandbox = "https://sandbox.cds-hooks.org"
    client = create_app(auth_on_settings(tmp_path, cors_origins=(sandbox,))).test_client()
    assert preflight(client, sandbox).headers["Access-Control-Allow-Origin"] == sandbox
    assert "Access-Control-Allow-Origin" not in preflight(client, "https://evil.example").headers


def test_any_origin_is_refused_outside_the_local_trial(tmp_path):
    with pytest.raises(ConfigError, match="local trial"):
        Settings.from_env({"CDS_CORS_ORIGINS": "*", "CDS_AUTH": "on"})
    with pytest.raises(ConfigError, match="local trial"):
        Settings.from_env({"CDS_CORS_ORIGINS": "*", "CDS_AUTH": "off", "CDS_HOST": "0.0.0.0"})
    assert Settings.from_env({"CDS_AUTH": "off", "CDS_HOST": "0.0.0.0"}).allowed_origins == ()
    assert Settings.from_env({"CDS_AUTH": "off"}).allowed_origins == ("*",)


def request_log_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "cds.request"]


def test_request_log_carries_only_validated_values(client, caplog):
    """A 4 MB hookInstance and identifiers in hook and path used to reach the log verbatim."""
    caplog.set_level(logging.INFO, logger="cds.request")
    request = hook_request("patient-view")
    request["hookInstance"] = "MRN-123456789 " + "x" * 4_000_000
    client.post(SERVICE, json=request)
    client.post("/cds-services/" + "MRN-987654321" * 1000, json=request)
    request["hook"] = "MRN-555"
    client.post(SERVICE, json=request)
    lines = request_log_lines(caplog)
    assert len(lines) == 3
    text = json.dumps(lines)
    assert "MRN" not in text and len(text) < 2000
    assert lines[0]["hookInstance"] == "(not a UUID)"


def test_request_log_keeps_real_values(client, caplog):
    caplog.set_level(logging.INFO, logger="cds.request")
    request = hook_request("patient-view")
    client.post(SERVICE, json=request)
    (line,) = request_log_lines(caplog)
    assert (line["service"], line["hook"], line["hookInstance"]) == (
        "baclofen-patient-view", "patient-view", request["hookInstance"])


def test_sqlite_database_is_created_readable_by_its_owner_only(tmp_path, client):
    path = tmp_path / "private.db"
    store = Store(f"sqlite:///{path}")
    store.create_schema()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for companion in (tmp_path / "private.db-wal", tmp_path / "private.db-shm"):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600
