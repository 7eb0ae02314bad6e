"""PostgreSQL for tests: the server named by CDS_TEST_POSTGRES_URL, one fresh database per test.

`.ci/run` starts a throwaway cluster and sets the variable. Where it is unset the
PostgreSQL tests are skipped, and pytest's summary (-ra) prints the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

URL_VARIABLE = "CDS_TEST_POSTGRES_URL"
SKIP_REASON = (
    f"PostgreSQL tests skipped: {URL_VARIABLE} is not set "
    "(e.g. postgresql+psycopg://user:password@127.0.0.1:5432/db; .ci/run starts one)"
)


def postgres_url() -> str | None:
    return os.environ.get(URL_VARIABLE) or None


def require_postgres() -> str:
    """The admin URL, or skip the calling test with the reason printed in the summary."""
    url = postgres_url()
    if url is None:
        pytest.skip(SKIP_REASON)
    return url


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database for one test, yield its URL, drop it afterwards."""
    admin_url = make_url(require_postgres())
    name = f"cds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - say plainly why the test cannot run
        admin.dispose()
        pytest.fail(f"cannot create a test database on {URL_VARIABLE}: {error}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE (PostgreSQL 13+) ends connections a killed server left behind.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
