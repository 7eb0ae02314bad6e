"""Fetch FHIR data from the CDS client's FHIR server when prefetch did not supply it.

Every call is bounded: connect and read timeouts, a response size cap, a page cap for
Bundle `next` links, and one deadline for the whole gathering step. Every URL fetched
must be allowed by the hook call's FhirServerPermit (cds/fhir_servers.py), and sockets
connect only to checked addresses (cds/outbound_http.py).

Failures become FhirFetchError. Its `kind` (a closed set: metrics, server logs) says
what went wrong; the `reason` the client sees is one generic sentence, so answers
never tell an open port from a closed one or a slow host from a missing one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests
import urllib3

from cds.fhir_servers import FhirServerPermit
from cds.outbound_http import BlockedAddressError, checked_session
from cds.resources import flatten

FHIR_JSON = "application/fhir+json"
NOT_FETCHED = "could not be fetched from the FHIR server"


class FhirFetchError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # deadline, timeout, unreachable, blocked_address, http_status, ...
        self.reason = NOT_FETCHED


@dataclass
class FetchResult:
    resources: list[dict]
    truncated: bool = False  # more pages existed than were fetched


@dataclass
class PagesSoFar:
    """Whole pages of one search as they arrive, so that when the deadline passes the
    pages already fetched still count (the key is then reported as truncated)."""

    resources: list[dict] = field(default_factory=list)
    pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def add(self, page: list[dict]) -> None:
        with self._lock:
            if not self._closed:
                self.resources.extend(page)
                self.pages += 1

    def close(self) -> tuple[list[dict], int]:
        """What arrived by now; pages arriving later are dropped."""
        with self._lock:
            self._closed = True
            return list(self.resources), self.pages


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float
    read_timeout: float
    max_pages: int
    max_response_bytes: int


class FhirClient:
    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        limits: FetchLimits,
        deadline: float,
        permit: FhirServerPermit,
        session: requests.Session | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._origin = _origin(self.base_url)
        self._token = access_token
        self._limits = limits
        self._deadline = deadline  # time.monotonic() value
        self._permit = permit
        self._session = session or checked_session(permit.address_allowed, ca_bundle)

    def search(self, relative_url: str, sink: PagesSoFar | None = None) -> FetchResult:
        """GET a relative FHIR URL; follow Bundle `next` links up to the page cap. Pages
        go to `sink` as they arrive; when the deadline cuts the paging short, the pages
        fetched so far are the result, marked truncated."""
        sink = sink or PagesSoFar()
        if _has_dot_segment(relative_url):
            # urljoin resolves them away: Patient/.. would become a GET of the base itself,
            # which the allow-list check below could no longer tell from a real read.
            raise FhirFetchError("not_allowed")
        url = urljoin(self.base_url, relative_url.lstrip("/"))
        if not self._permit.url_allowed(url):
            raise FhirFetchError("not_allowed")
        for _page in range(self._limits.max_pages):
            try:
                body = self._get_json(url)
            except FhirFetchError as error:
                if error.kind in ("deadline", "timeout") and sink.pages:
                    return FetchResult(sink.close()[0], truncated=True)
                raise
            kind = body.get("resourceType") if isinstance(body, dict) else None
            if kind == "OperationOutcome":
                raise FhirFetchError("operation_outcome")
            if not isinstance(kind, str):
                raise FhirFetchError("not_fhir")
            if kind != "Bundle":
                if "?" in relative_url:
                    # A search answered by a lone resource means the search did not run;
                    # taking it as the result would read as "no such data".
                    raise FhirFetchError("not_a_bundle")
                sink.add([body])
                return FetchResult(sink.close()[0])
            page = flatten(body)
            if not all(isinstance(r.get("resourceType"), str) for r in page):
                # Every later step keys on resourceType; a list or object there is not FHIR.
                raise FhirFetchError("not_fhir")
            sink.add(page)
            next_url = _next_link(body)
            if next_url is None:
                return FetchResult(sink.close()[0])
            url = urljoin(url, next_url)
            if _origin(url) != self._origin or not self._permit.url_allowed(url):
                # Never send the bearer token to another origin, or off the allow-list.
                return FetchResult(sink.close()[0], truncated=True)
        return FetchResult(sink.close()[0], truncated=True)

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError("deadline")
        return remaining

    def _get_json(self, url: str) -> object:
        remaining = self._remaining()
        headers = {"Accept": FHIR_JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        timeout = (
            min(self._limits.connect_timeout, remaining),
            min(self._limits.read_timeout, remaining),
        )
        try:
            with self._session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise FhirFetchError("http_status")
                body = self._read_bounded(response)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise FhirFetchError("timeout") from None
        except requests.ConnectionError as error:
            blocked = _caused_by(error, BlockedAddressError)
            raise FhirFetchError("blocked_address" if blocked else "unreachable") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            # urllib3's own errors: the body is read from response.raw (see _read_bounded).
            raise FhirFetchError("unreachable") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FhirFetchError("not_fhir") from None

    def _read_bounded(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limits.max_response_bytes:
            raise FhirFetchError("too_large")
        chunks: list[bytes] = []
        size = 0
        while True:
            # read1 returns what has arrived (one recv), where iter_content waits for a
            # full 64 KB block: a server dripping a byte at a time would hold this thread
            # long past the deadline.
            chunk = response.raw.read1(65536, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > self._limits.max_response_bytes:
                raise FhirFetchError("too_large")
            chunks.append(chunk)
            self._remaining()  # a slow drip must not outlive the deadline
        return b"".join(chunks)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """requests wraps urllib3's errors (MaxRetryError(reason=...)); look through them."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        linked = [*current.args, getattr(current, "reason", None), current.__cause__,
                  current.__context__]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False


def _has_dot_segment(relative_url: str) -> bool:
    segments = urlsplit(relative_url).path.split("/")
    return "." in segments or ".." in segments


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _next_link(bundle: dict) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def render_template(template: str, context: dict) -> str | None:
    """Fill prefetch tokens from the hook context; None when a token has no value."""
    out = template
    while "{{" in out:
        start = out.index("{{")
        end = out.find("}}", start)
        if end < 0:
            return None
        token = out[start + 2 : end].strip()
        value = _token_value(token, context)
        if value is None:
            return None
        out = out[:start] + quote(value, safe="") + out[end + 2 :]
    return out


_USER_TOKENS = {
    "userPractitionerId": "Practitioner/",
    "userPractitionerRoleId": "PractitionerRole/",
    "userPatientId": "Patient/",
    "userRelatedPersonId": "RelatedPerson/",
}


def _token_value(token: str, context: dict) -> str | None:
    if token.startswith("context."):
        value = context.get(token.removeprefix("context."))
        return value if isinstance(value, str) and value else None
    prefix = _USER_TOKENS.get(token)
    user = context.get("userId")
    if prefix and isinstance(user, str) and user.startswith(prefix):
        return user.removeprefix(prefix)
    return None
