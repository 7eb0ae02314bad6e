from __future__ import annotations

from pathlib import Path

import pytest

from cds.app import create_app
from cds.config import Settings
from tests.support.fake_fhir import FakeFhirServer
from tests.support.live import LiveServer

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}", auth_enabled=False)


@pytest.fixture
def make_app(settings: Settings):
    def factory(**overrides):
        return create_app(Settings(**{**settings.__dict__, **overrides}))

    return factory


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def fake_fhir():
    server = FakeFhirServer().start()
    yield server
    server.stop()


@pytest.fixture
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture
def live_server(tmp_path: Path, output_dir: Path):
    """A real `baclofen-cds serve` on 127.0.0.1 with its own SQLite file, auth off."""
    servers: list[LiveServer] = []

    def start(env: dict[str, str] | None = None, workers: int = 1, args=None,
              tls_cert: Path | None = None) -> LiveServer:
        base_env = {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}"}
        server = LiveServer({**base_env, **(env or {})}, workers=workers, args=args,
                            tls_cert=tls_cert)
        servers.append(server)
        return server.start(output_dir / f"server-{server.port}.log")

    yield start
    for server in servers:
        server.stop()
