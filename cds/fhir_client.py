"""Fetch FHIR data from the CDS client's FHIR server when prefetch did not supply it.

Every call is bounded: connect and read timeouts, a response size cap, a page cap for
Bundle `next` links, and one deadline for the whole gathering step. Failures become
FhirFetchError with a short reason that carries no patient data and no token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import orjson
import requests
import urllib3

from cds.resources import flatten

FHIR_JSON = "application/fhir+json"


class FhirFetchError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class FetchResult:
    resources: list[dict]
    truncated: bool = False  # more pages existed than the page cap allowed


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
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._origin = _origin(self.base_url)
        self._token = access_token
        self._limits = limits
        self._deadline = deadline  # time.monotonic() value
        self._session = session or requests.Session()

    def search(self, relative_url: str) -> FetchResult:
        """GET a relative FHIR URL; follow Bundle `next` links up to the page cap."""
        url = urljoin(self.base_url, relative_url.lstrip("/"))
        resources: list[dict] = []
        for _page in range(self._limits.max_pages):
            body = self._get_json(url)
            kind = body.get("resourceType") if isinstance(body, dict) else None
            if kind == "OperationOutcome":
                raise FhirFetchError("the FHIR server answered with an OperationOutcome")
            if not isinstance(kind, str):
                raise FhirFetchError("the FHIR server answered with something that is not FHIR")
            if kind != "Bundle":
                if "?" in relative_url:
                    # A search answered by a lone resource means the search did not run;
                    # taking it as the result would read as "no such data".
                    raise FhirFetchError(
                        "the FHIR server answered a search with a resource that is not a Bundle"
                    )
                resources.append(body)
                return FetchResult(resources)
            page = flatten(body)
            if not all(isinstance(r.get("resourceType"), str) for r in page):
                # Every later step keys on resourceType; a list or object there is not FHIR.
                raise FhirFetchError("the FHIR server answered with something that is not FHIR")
            resources.extend(page)
            next_url = _next_link(body)
            if next_url is None:
                return FetchResult(resources)
            url = urljoin(url, next_url)
            if _origin(url) != self._origin:
                # Never send the bearer token to another origin.
                return FetchResult(resources, truncated=True)
        return FetchResult(resources, truncated=True)

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise FhirFetchError("the FHIR server did not answer before the deadline")
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
                    raise FhirFetchError(f"the FHIR server answered HTTP {response.status_code}")
                body = self._read_bounded(response)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise FhirFetchError("the FHIR server timed out") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            # urllib3's own errors: the body is read from response.raw (see _read_bounded).
            raise FhirFetchError("the FHIR server could not be reached") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FhirFetchError("the FHIR server answered with non-JSON") from None

    def _read_bounded(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._limits.max_response_bytes:
            raise FhirFetchError("the FHIR server's answer was larger than allowed")
        chunks: list[bytes] = []
        size = 0
        while True:
            # read1 returns what has arrived (one recv), where iter_content waits for a
            # full 64 KB block: a server dripping a byte at a time would hold this thread
            # long past the deadline and starve the shared fetch pool.
            chunk = response.raw.read1(65536, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > self._limits.max_response_bytes:
                raise FhirFetchError("the FHIR server's answer was larger than allowed")
            chunks.append(chunk)
            self._remaining()  # a slow drip must not outlive the deadline
        return b"".join(chunks)


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
