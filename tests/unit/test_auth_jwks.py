"""Remote JWK Sets served on 127.0.0.1: rotation, refresh limits, and failures that fail closed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds.auth import Authenticator, AuthError, JwksCache
from cds.auth.jwks import JwksUnavailable
from cds.auth.keys_cli import public_jwk
from cds.auth.trust import parse_trust_config

ISS = "https://ehr.example.org"
SERVICE_URL = "https://cds.example.org/cds-services/baclofen-discontinuation"
MIN_REFRESH = 60.0


class KeyServer:
    """A JWK Set endpoint whose content and behaviour a test can change."""

    def __init__(self) -> None:
        self.body: bytes = b'{"keys": []}'
        self.status = 200
        self.delay_seconds = 0.0
        self.redirect_to: str | None = None
        self.hits = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.hits += 1
                if server.delay_seconds:
                    time.sleep(server.delay_seconds)
                if server.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # do not wait for a deliberately slow handler
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/.well-known/jwks.json"
        self._stopped = False
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def publish(self, *keys: ec.EllipticCurvePrivateKey, kids: list[str]) -> None:
        jwks = [public_jwk(k.public_key(), kid) for k, kid in zip(keys, kids, strict=True)]
        self.body = json.dumps({"keys": jwks}).encode()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeReplayStore:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def claim_jti(self, iss: str, jti: str, expires_at: datetime) -> bool:
        with self._lock:
            if (iss, jti) in self.seen:
                return False
            self.seen.add((iss, jti))
            return True


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def cache(clock) -> JwksCache:
    return JwksCache(
        min_refresh_seconds=MIN_REFRESH,
        max_age_seconds=3600,
        connect_timeout_seconds=1.0,
        read_timeout_seconds=0.5,
        max_response_bytes=64 * 1024,
        clock=clock,
    )


def authenticator_for(issuer: dict[str, Any], cache: JwksCache) -> Authenticator:
    trust = parse_trust_config({"issuers": [{"iss": ISS, **issuer}]})
    return Authenticator(trust, FakeReplayStore(), "https://cds.example.org", jwks_cache=cache)


@pytest.fixture
def authenticator(key_server, cache) -> Authenticator:
    return authenticator_for({"jwks_url": key_server.url}, cache)


def token(key: ec.EllipticCurvePrivateKey, kid: str, **header: Any) -> str:
    issued = int(time.time())
    claims = {
        "iss": ISS,
        "aud": SERVICE_URL,
        "iat": issued,
        "exp": issued + 300,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid, "typ": "JWT", **header})


def accept(authenticator: Authenticator, jwt_token: str) -> str:
    return authenticator.authenticate(f"Bearer {jwt_token}", SERVICE_URL).kid


def reject(authenticator: Authenticator, jwt_token: str) -> str:
    with pytest.raises(AuthError) as caught:
        authenticator.authenticate(f"Bearer {jwt_token}", SERVICE_URL)
    return caught.value.reason


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def test_keys_are_fetched_once_and_cached(authenticator, key_server):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    for _ in range(5):
        assert accept(authenticator, token(key, "k1")) == "k1"
    assert key_server.hits == 1


def test_rotation_new_kid_is_accepted_after_refresh_and_old_kid_retired(
    authenticator, key_server, clock
):
    old, new = new_key(), new_key()
    key_server.publish(old, kids=["2024"])
    assert accept(authenticator, token(old, "2024")) == "2024"

    key_server.publish(new, kids=["2025"])  # the client rotates its key
    clock.now += MIN_REFRESH + 1
    assert accept(authenticator, token(new, "2025")) == "2025"
    assert key_server.hits == 2
    # The retired kid is gone from the refreshed set, and the refresh interval forbids refetching.
    assert "unknown kid" in reject(authenticator, token(old, "2024"))
    assert key_server.hits == 2


def test_unknown_kid_storm_refetches_at_most_once_per_interval(authenticator, key_server, clock):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    accept(authenticator, token(key, "k1"))
    assert key_server.hits == 1

    def junk_call(_: int) -> str:
        return reject(authenticator, token(key, f"junk-{uuid.uuid4()}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        reasons = list(pool.map(junk_call, range(200)))
    assert all("unknown kid" in reason for reason in reasons)
    assert key_server.hits == 1  # inside the interval: no refetch at all

    clock.now += MIN_REFRESH + 1
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(junk_call, range(200)))
    assert key_server.hits == 2  # one refetch for the whole storm


def test_server_error_rejects_and_does_not_retry_within_interval(authenticator, key_server):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    key_server.status = 500
    assert "JWK Set unavailable" in reject(authenticator, token(key, "k1"))
    assert "JWK Set unavailable" in reject(authenticator, token(key, "k1"))
    assert key_server.hits == 1


def test_server_down_rejects_without_crashing(authenticator, key_server):
    key = new_key()
    key_server.stop()  # connection refused from now on
    assert "JWK Set unavailable" in reject(authenticator, token(key, "k1"))


def test_server_down_keeps_cached_keys_for_known_kids_only(authenticator, key_server, clock):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    accept(authenticator, token(key, "k1"))
    key_server.status = 503
    clock.now += 3600 + MIN_REFRESH  # the cached copy is due for a refresh, which fails
    assert accept(authenticator, token(key, "k1")) == "k1"
    assert key_server.hits == 2
    clock.now += MIN_REFRESH + 1
    assert "unknown kid" in reject(authenticator, token(key, "k2"))


def test_slow_server_times_out_and_rejects(authenticator, key_server):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    key_server.delay_seconds = 2.0
    started = time.monotonic()
    assert "JWK Set unavailable" in reject(authenticator, token(key, "k1"))
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"no_keys": []}',
        b'{"keys": "nope"}',
        b'{"keys": [' + b'{"kty": "EC", "kid": "x", "pad": "' + b"a" * 70000 + b'"}]}',
    ],
)
def test_bad_or_oversized_key_sets_are_rejected(authenticator, key_server, body):
    key_server.body = body
    assert "JWK Set unavailable" in reject(authenticator, token(new_key(), "x"))


def test_private_keys_in_a_published_set_are_ignored(authenticator, key_server):
    key = new_key()
    leaked = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
    key_server.body = json.dumps({"keys": [{**leaked, "kid": "k1"}]}).encode()
    assert "unknown kid" in reject(authenticator, token(key, "k1"))


def test_redirects_are_not_followed(authenticator, key_server):
    other = KeyServer()
    try:
        key = new_key()
        other.publish(key, kids=["k1"])
        key_server.redirect_to = other.url
        assert "JWK Set unavailable" in reject(authenticator, token(key, "k1"))
        assert other.hits == 0
    finally:
        other.stop()


def test_allow_listed_jku_is_fetched(key_server, cache):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    static = new_key()
    issuer = {
        "jwks": {"keys": [public_jwk(static.public_key(), "static")]},
        "jku_allowed": [key_server.url],
    }
    authenticator = authenticator_for(issuer, cache)
    assert accept(authenticator, token(key, "k1", jku=key_server.url)) == "k1"
    assert accept(authenticator, token(static, "static")) == "static"
    assert key_server.hits == 1


def test_jku_off_the_allow_list_is_never_fetched(key_server, cache):
    key = new_key()
    key_server.publish(key, kids=["k1"])
    static = new_key()
    issuer = {"jwks": {"keys": [public_jwk(static.public_key(), "static")]}}
    authenticator = authenticator_for(issuer, cache)
    reason = reject(authenticator, token(key, "k1", jku=key_server.url))
    assert "jku not on the allow-list" in reason
    assert key_server.hits == 0


def test_netrc_credentials_are_never_sent_with_a_jwks_fetch(tmp_path, monkeypatch) -> None:
    """requests adds ~/.netrc credentials for a matching host unless auth is given."""
    import requests

    (tmp_path / ".netrc").write_text("machine keys.example.org login svc password secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    sent: list[requests.PreparedRequest] = []

    class Recording(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):
            sent.append(request)
            raise requests.ConnectionError("not really sent")

    session = requests.Session()
    session.mount("https://", Recording())
    cache = JwksCache(session=session)
    with pytest.raises(JwksUnavailable):
        cache.find_key("https://keys.example.org/jwks.json", "k1")
    assert sent and all("Authorization" not in r.headers for r in sent)
