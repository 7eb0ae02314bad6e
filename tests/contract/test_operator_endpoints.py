"""Issue 15 finding 4 (operator endpoints) and finding 6 (/readyz)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from cds.app import create_app
from cds.config import Settings
from tests.support.clients import PUBLIC_BASE, ClientKeys, write_trust_file
from tests.support.openapi import check_response

OPERATOR_PATHS = ("/metrics", "/reports/feedback")


def auth_on(tmp_path, **settings):
    trust = write_trust_file(tmp_path, ClientKeys("https://ehr.example.org"))
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}",
                               auth_enabled=True, trust_file=str(trust),
                               public_base_urls=(PUBLIC_BASE,), **settings)).test_client()


def test_operator_endpoints_are_closed_by_default_with_authentication_on(tmp_path):
    """They answered anyone, with authentication on and no token configured."""
    client = auth_on(tmp_path)
    for path in OPERATOR_PATHS:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "CDS_METRICS_TOKEN" in response.get_json()["issue"][0]["diagnostics"]


def test_operator_token_opens_them(tmp_path):
    client = auth_on(tmp_path, metrics_token="op-token")
    for path in OPERATOR_PATHS:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer op-token"}).status_code == 200


def test_operator_bind_serves_operator_endpoints_only(tmp_path):
    client = auth_on(tmp_path, operator_bind=("127.0.0.1", 9464))
    on_operator = {"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "9464"}
    for path in OPERATOR_PATHS:
        assert client.get(path, environ_overrides=on_operator).status_code == 200
        assert client.get(path).status_code == 403  # the public address stays closed
    assert client.get("/healthz", environ_overrides=on_operator).status_code == 200
    assert client.get("/cds-services", environ_overrides=on_operator).status_code == 404


def test_local_trial_keeps_them_open(client):
    for path in OPERATOR_PATHS:
        assert client.get(path).status_code == 200


def fill_the_disk(store) -> None:
    """A database that can grow no more, as on a full disk: SQLite answers SQLITE_FULL
    to any write that needs a new page."""

    @event.listens_for(store.engine, "connect")
    def _limit(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    store.engine.dispose()


def test_readyz_fails_on_a_full_disk(app, make_app, tmp_path):
    """/readyz wrote nothing, so it said ready on a full disk while every authenticated
    call (which writes the JWT replay store) failed with 503."""
    assert make_app(database_url=f"sqlite:///{tmp_path / 'roomy.db'}").test_client().get(
        "/readyz").status_code == 200
    client = app.test_client()
    fill_the_disk(app.extensions["cds"].store)  # before any probe left free pages behind
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] is False
    check_response("GET", "/readyz", 503, response.get_json())


@pytest.mark.parametrize("value", ["", "nope", "host:0", "host:99999", ":80"])
def test_operator_bind_must_be_host_and_port(value):
    from cds.config import ConfigError

    if value == "":
        assert Settings.from_env({"CDS_OPERATOR_BIND": value}).operator_bind is None
        return
    with pytest.raises(ConfigError):
        Settings.from_env({"CDS_OPERATOR_BIND": value})
