"""Which FHIR servers the service may call back, for which CDS client (SSRF defence).

A request's `fhirServer` is chosen by the caller. Calling it with the caller's bearer
token makes the service a proxy into whatever network it sits in, so a call is made
only when:

- with authentication on: the URL matches one of the calling issuer's `fhir_servers`
  patterns in the trust file, and is https;
- with authentication off (the local trial): the host is loopback, or the URL matches
  CDS_FHIR_ALLOWED_SERVERS;

and, at connect time, every address the host resolves to is public, unless the
matching pattern says `private_network: true` (then private and loopback addresses are
allowed too; link-local, multicast, reserved and unspecified addresses never are).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cds.net import is_loopback_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NOT_ALLOWED = "fhirServer is not on this service's list of FHIR servers for the calling client"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class ServerPatternError(ValueError):
    """A configured FHIR server pattern is unusable; the message names it."""


@dataclass(frozen=True)
class ServerPattern:
    """A FHIR base URL, `https://fhir.example.org/r4`, or with a host wildcard,
    `https://*.example.org/fhir` (one or more labels). A URL matches when scheme, host
    and port are equal and its path is the pattern's path or lies below it."""

    scheme: str
    host: str  # lower case; "*.example.org" for a wildcard
    port: int
    path: str  # no trailing slash; "" for the root
    private_network: bool = False

    def matches(self, url: ParsedUrl) -> bool:
        if (url.scheme, url.port) != (self.scheme, self.port):
            return False
        if self.host.startswith("*."):
            if not url.host.endswith(self.host[1:]):
                return False
        elif url.host != self.host:
            return False
        return url.path == self.path or url.path.startswith(self.path + "/")


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str) -> ParsedUrl | None:
    """An http(s) URL reduced to what the allow-list compares, or None when it is one a
    check could be fooled by: credentials, dot segments, encoded slashes or dots,
    backslashes, an unusable port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    lowered = parts.path.lower()
    if "\\" in url or "%2f" in lowered or "%2e" in lowered or "%5c" in lowered:
        return None
    segments = parts.path.split("/")
    if "." in segments or ".." in segments:
        return None
    default = 443 if scheme == "https" else 80
    return ParsedUrl(scheme, host, port or default, parts.path.rstrip("/"))


def parse_server_pattern(item: Any, where: str, *, allow_http_loopback: bool = False
                         ) -> ServerPattern:
    """A trust-file (or CDS_FHIR_ALLOWED_SERVERS) entry: a URL string, or
    {"url": ..., "private_network": bool}."""
    private = False
    if isinstance(item, dict):
        url, private = item.get("url"), bool(item.get("private_network", False))
    else:
        url = item
    if not isinstance(url, str):
        raise ServerPatternError(f"{where}: a FHIR server must be a URL")
    wildcard = "://*." in url
    parsed = parse_url(url.replace("://*.", "://wildcard.", 1) if wildcard else url)
    if parsed is None or urlsplit(url).query or urlsplit(url).fragment:
        raise ServerPatternError(f"{where}: {url!r} is not a plain http(s) base URL")
    host = "*." + parsed.host.removeprefix("wildcard.") if wildcard else parsed.host
    if parsed.scheme != "https" and not (allow_http_loopback and is_loopback_host(host)):
        raise ServerPatternError(f"{where}: {url!r} must be https")
    return ServerPattern(parsed.scheme, host, parsed.port, parsed.path, private)


@dataclass(frozen=True)
class FhirServerPermit:
    """What one hook call may reach: URLs under `pattern` (or, in the local trial, the
    loopback origin it named) at the addresses `address_allowed` accepts."""

    origin: tuple[str, str, int]
    base_path: str  # the allow-listed pattern's path; "" for the whole origin
    private_network: bool
    loopback: bool

    def url_allowed(self, url: str) -> bool:
        """Every URL fetched (Bundle `next` links too) stays on the origin and below the
        allow-listed path."""
        parsed = parse_url(url)
        if parsed is None or (parsed.scheme, parsed.host, parsed.port) != self.origin:
            return False
        return (not self.base_path or parsed.path == self.base_path
                or parsed.path.startswith(self.base_path + "/"))

    def address_allowed(self, address: IPAddress) -> bool:
        address = embedded_ipv4(address)
        if address.is_loopback:
            return self.loopback or self.private_network
        if (address.is_link_local or address.is_multicast or address.is_unspecified
                or address.is_reserved):
            return False  # cloud metadata (169.254.169.254) lives here
        if not address.is_global:
            return self.private_network
        return True


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, Teredo, NAT64), so
    `::ffff:127.0.0.1` is judged as 127.0.0.1 (Python 3.11 calls it not loopback)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@dataclass(frozen=True)
class FhirServerPolicy:
    """Decides, before any network traffic, whether a hook call may use its fhirServer."""

    local_trial_patterns: tuple[ServerPattern, ...] = ()

    def permit(self, fhir_server: str, client_patterns: Iterable[ServerPattern] | None
               ) -> FhirServerPermit | None:
        """`client_patterns` None: authentication is off (local trial rules apply)."""
        parsed = parse_url(fhir_server)
        if parsed is None:
            return None
        origin = (parsed.scheme, parsed.host, parsed.port)
        if client_patterns is None:
            if is_loopback_host(parsed.host):
                return FhirServerPermit(origin, "", False, loopback=True)
            patterns: Iterable[ServerPattern] = self.local_trial_patterns
        else:
            if parsed.scheme != "https":
                return None
            patterns = client_patterns
        for pattern in patterns:
            if pattern.matches(parsed):
                return FhirServerPermit(origin, pattern.path, pattern.private_network,
                                        loopback=False)
        return None
