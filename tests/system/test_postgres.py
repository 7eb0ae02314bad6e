"""Several instances on one PostgreSQL: shared feedback and shared JWT replay protection.

Two `baclofen-cds serve` processes (two workers each) stand for two hosts behind a load
balancer: both know the public URL clients call, so a token's `aud` fits either one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from cds.auth.keys_cli import public_jwk
from cds.storage import FeedbackEntry, Store
from tests.support.live import LiveServer
from tests.support.postgres import fresh_database
from tests.support.requests import hook_request

pytestmark = pytest.mark.postgres

ISS = "https://ehr.example.org"
PUBLIC = "https://cds.example.org"  # what the load balancer exposes
VIEW_PATH = "/cds-services/baclofen-patient-view"
FEEDBACK_PATH = "/cds-services/baclofen-order-sign/feedback"


@pytest.fixture
def database_url():
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def signing_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def trust_file(signing_key, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pgtrust") / "trust.json"
    jwks = {"keys": [public_jwk(signing_key.public_key(), "ec-1")]}
    path.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": jwks}]}))
    return path


def token(key, path: str) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": PUBLIC + path, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "ec-1"})


@pytest.fixture
def two_instances(database_url, trust_file, tmp_path, output_dir):
    env = {"CDS_AUTH": "on", "CDS_TRUST_FILE": str(trust_file),
           "CDS_PUBLIC_BASE_URL": PUBLIC, "CDS_DATABASE_URL": database_url}
    servers = [LiveServer(env, workers=2), LiveServer(env, workers=2)]
    failures: list[Exception] = []

    def start(server: LiveServer) -> None:
        try:
            server.start(output_dir / f"pg-instance-{server.port}.log")
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    # Start both at once: four workers race to create the schema in an empty database.
    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not failures, f"an instance did not start: {failures[0]}"
        yield servers
    finally:
        for server in servers:
            server.stop()


def post(server: LiveServer, path: str, body: dict, bearer: str) -> requests.Response:
    return requests.post(server.base_url + path, json=body,
                         headers={"Authorization": f"Bearer {bearer}"}, timeout=15)


def feedback_document(card: str, minutes_ago: int = 1) -> dict:
    stamp = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": stamp,
                          "overrideReason": {"userComment": "taper already planned"}}]}


def test_a_token_used_on_one_instance_is_a_replay_on_the_other(two_instances, signing_key):
    first, second = two_instances
    bearer = token(signing_key, VIEW_PATH)
    assert post(first, VIEW_PATH, hook_request("patient-view"), bearer).status_code == 200
    replay = post(second, VIEW_PATH, hook_request("patient-view"), bearer)
    assert replay.status_code == 401
    # And the other way round, with a fresh token.
    bearer = token(signing_key, VIEW_PATH)
    assert post(second, VIEW_PATH, hook_request("patient-view"), bearer).status_code == 200
    assert post(first, VIEW_PATH, hook_request("patient-view"), bearer).status_code == 401


def test_feedback_is_shared_and_a_retry_on_the_other_instance_is_stored_once(
    two_instances, signing_key, database_url
):
    first, second = two_instances
    document = feedback_document(str(uuid.uuid4()))
    answer = post(first, FEEDBACK_PATH, document, token(signing_key, FEEDBACK_PATH))
    assert answer.status_code == 200 and answer.json()["stored"] == 1
    # The load balancer sends the client's retry to the other instance.
    retry = post(second, FEEDBACK_PATH, document, token(signing_key, FEEDBACK_PATH))
    assert retry.status_code == 200 and retry.json()["duplicates"] == 1
    other = feedback_document(str(uuid.uuid4()))
    assert post(second, FEEDBACK_PATH, other, token(signing_key, FEEDBACK_PATH)).status_code == 200

    rows = Store(database_url).feedback_rows()
    assert sorted(r["card_uuid"] for r in rows) == sorted(
        [document["feedback"][0]["card"], other["feedback"][0]["card"]])


def test_both_instances_are_ready(two_instances):
    for server in two_instances:
        ready = requests.get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"] is True


def entry(card: str, when: datetime, comment: str | None = None) -> FeedbackEntry:
    return FeedbackEntry("baclofen-order-sign", card, "overridden", (), None, None, None, comment,
                         when)


def test_concurrent_identical_deliveries_are_stored_once(database_url):
    stores = [Store(database_url), Store(database_url)]
    stores[0].create_schema()
    when = datetime.now(UTC)
    entries = [entry(f"card-{i}", when) for i in range(40)]
    stored: list[int] = []

    def deliver(store: Store) -> None:
        stored.append(store.save_feedback(entries))

    threads = [threading.Thread(target=deliver, args=(stores[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(stored) == 40
    assert len(stores[0].feedback_rows()) == 40


def test_offsets_and_nul_characters_are_stored_faithfully(database_url):
    store = Store(database_url)
    store.create_schema()
    plus_two = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0)
    assert store.save_feedback([entry("card-\x00-nul", plus_two, "comment \x00 with NUL")]) == 1
    row = store.feedback_rows()[0]
    assert row["outcome_timestamp"] == plus_two  # the same instant, whatever the offset
    assert row["card_uuid"] == "card-\ufffd-nul"
    assert store.feedback_rows(since=plus_two + timedelta(seconds=1)) == []


def test_replay_store_is_shared_between_store_objects(database_url):
    first, second = Store(database_url), Store(database_url)
    first.create_schema()
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert first.claim_jti(ISS, "jti-1", expires) is True
    assert second.claim_jti(ISS, "jti-1", expires) is False
    assert second.claim_jti(ISS, "jti-\x00", expires) is True
