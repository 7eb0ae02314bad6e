"""Remote JWK Sets: fetched with bounded effort, cached, refreshed sparingly.

A token naming an unknown `kid` triggers at most one refetch per URL per
`min_refresh_seconds`, so a flood of junk tokens cannot turn us into a
request storm against a client's key server. A failed fetch never yields a
key: we either keep the keys we already had or answer "no key".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from cds.auth.trust import (
    DEFAULT_JWKS_MAX_AGE_SECONDS,
    DEFAULT_JWKS_MIN_REFRESH_SECONDS,
    public_jwk_problem,
)

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.05
DEFAULT_READ_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024  # real JWK Sets are a few KB


class JwksUnavailable(Exception):
    """No key set has ever been fetched successfully from this URL."""


class JwksFetchError(Exception):
    """One fetch attempt failed (network, status, size, or content)."""


@dataclass
class _CachedSet:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: dict[str, Mapping[str, Any]] | None = None  # kid -> JWK; None until first success
    fetched_at: float | None = None  # last successful fetch (monotonic seconds)
    attempted_at: float | None = None  # last attempt, successful or not


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class JwksCache:
    """Thread-safe cache of remote JWK Sets keyed by URL."""

    def __init__(
        self,
        min_refresh_seconds: float = DEFAULT_JWKS_MIN_REFRESH_SECONDS,
        max_age_seconds: float = DEFAULT_JWKS_MAX_AGE_SECONDS,
        connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        read_timeout_seconds: float = DEFAULT_READ_TIMEOUT_SECONDS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.connect_timeout_seconds = connect_timeout_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self.max_response_bytes = max_response_bytes
        self._session = session or requests.Session()
        self._clock = clock
        self._sets: dict[str, _CachedSet] = {}
        self._sets_lock = threading.Lock()

    def find_key(self, url: str, kid: str) -> Mapping[str, Any] | None:
        """The JWK with this kid from the set at url, or None if the set has no such key.

        Raises JwksUnavailable when no copy of the set could ever be fetched.
        """
        cached = self._cached_set(url)
        # One fetch per URL at a time: concurrent callers wait, then reuse its result.
        with cached.lock:
            now = self._clock()
            if self._wants_refresh(cached, kid, now) and self._may_fetch(cached, now):
                cached.attempted_at = now
                try:
                    cached.keys = self._fetch(url)
                    cached.fetched_at = self._clock()
                except JwksFetchError as exc:
                    log.warning("JWK Set fetch from %s failed: %s", url, exc)
            if cached.keys is None:
                raise JwksUnavailable(url)
            return cached.keys.get(kid)

    def _cached_set(self, url: str) -> _CachedSet:
        with self._sets_lock:
            return self._sets.setdefault(url, _CachedSet())

    def _wants_refresh(self, cached: _CachedSet, kid: str, now: float) -> bool:
        if cached.keys is None or cached.fetched_at is None:
            return True
        return kid not in cached.keys or now - cached.fetched_at >= self.max_age_seconds

    def _may_fetch(self, cached: _CachedSet, now: float) -> bool:
        return cached.attempted_at is None or now - cached.attempted_at >= self.min_refresh_seconds

    def _fetch(self, url: str) -> dict[str, Mapping[str, Any]]:
        body = self._download(url)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JwksFetchError(f"response is not JSON ({exc.__class__.__name__})") from None
        return usable_keys(document, source=url)

    def _download(self, url: str) -> bytes:
        deadline = time.monotonic() + self.connect_timeout_seconds + self.read_timeout_seconds
        try:
            # No redirects: a redirect could lead off the allow-listed URL.
            with self._session.get(
                url,
                timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                allow_redirects=False,
                stream=True,
                # An explicit (empty) auth: requests would otherwise add credentials from
                # ~/.netrc for this host. Proxy variables are still honoured: a site may
                # need a proxy to reach a client's JWK Set.
                auth=_no_credentials,
                headers={"Accept": "application/json, application/jwk-set+json"},
            ) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"HTTP status {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(chunk_size=16 * 1024):
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        limit = self.max_response_bytes
                        raise JwksFetchError(f"response larger than {limit} bytes")
                    if time.monotonic() > deadline:  # a server dripping bytes forever
                        raise JwksFetchError("response took too long")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.RequestException as exc:
            raise JwksFetchError(exc.__class__.__name__) from None


def usable_keys(document: Any, source: str) -> dict[str, Mapping[str, Any]]:
    """Index a fetched JWK Set by kid, keeping only well-formed public signing keys.

    Keys we cannot use (encryption keys, other key types) are skipped rather than
    failing the whole set; a kid that appears twice is dropped, since it cannot
    select one key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError('not a JWK Set (no "keys" array)')
    keys: dict[str, Mapping[str, Any]] = {}
    duplicated: set[str] = set()
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        problem = public_jwk_problem(jwk)
        if problem:
            log.warning("JWK Set %s: skipping key %r: %s", source, jwk["kid"][:64], problem)
            continue
        if jwk["kid"] in keys:
            duplicated.add(jwk["kid"])
        keys[jwk["kid"]] = jwk
    for kid in duplicated:
        log.warning("JWK Set %s: key id %r appears twice; ignoring it", source, kid[:64])
        del keys[kid]
    return keys
