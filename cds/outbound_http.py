"""A requests Session for calls to a client's FHIR server that connects only to checked
addresses.

The host is resolved once, every address is checked (`address_allowed`), and the socket
connects to a checked address; the name is never resolved again, so a DNS answer that
changes between check and connect (rebinding) cannot redirect the call. TLS still
verifies the certificate against the host name. The environment is ignored
(`trust_env=False`): no proxy variables, no ~/.netrc whose credentials would replace the
bearer token, no CA bundle variable (CDS_FHIR_CA_BUNDLE names one explicitly).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

AddressCheck = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]


class BlockedAddressError(NewConnectionError):
    """The host resolved to an address the policy does not allow."""


def resolve_checked(host: str, port: int, address_allowed: AddressCheck
                    ) -> list[tuple[int, tuple]]:
    """(family, sockaddr) for each address of host; all must be allowed, or none is used:
    a name that answers with one public and one private address is not trusted."""
    infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    targets = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not address_allowed(address):
            raise OSError(f"address of {host!r} not allowed")
        targets.append((family, sockaddr))
    if not targets:
        raise OSError(f"{host!r} has no address")
    return targets


class _CheckedConnectMixin:
    address_allowed: AddressCheck  # set on each generated subclass

    def _new_conn(self) -> socket.socket:  # urllib3's hook for opening the socket
        host, port, timeout = self._dns_host, self.port, self.timeout  # type: ignore[attr-defined]
        try:
            targets = resolve_checked(host, port, type(self).address_allowed)
        except socket.gaierror as error:
            raise NameResolutionError(host, self, error) from error  # type: ignore[arg-type]
        except OSError as error:
            raise BlockedAddressError(self, str(error)) from error  # type: ignore[arg-type]
        last_error: OSError | None = None
        for family, sockaddr in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout if isinstance(timeout, int | float) else None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(sockaddr)
                return sock
            except TimeoutError as error:
                sock.close()
                raise ConnectTimeoutError(self, f"connect to {host} timed out") from error
            except OSError as error:
                sock.close()
                last_error = error
        raise NewConnectionError(self, f"cannot connect: {last_error}")  # type: ignore[arg-type]


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, address_allowed: AddressCheck) -> None:
        check = staticmethod(address_allowed)
        http = type("CheckedHTTPConnection", (_CheckedConnectMixin, HTTPConnection),
                    {"address_allowed": check})
        https = type("CheckedHTTPSConnection", (_CheckedConnectMixin, HTTPSConnection),
                     {"address_allowed": check})
        self._pools = {
            "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def checked_session(address_allowed: AddressCheck, ca_bundle: str | None = None
                    ) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.proxies = {}
    if ca_bundle:
        session.verify = ca_bundle
    adapter = _CheckedAdapter(address_allowed)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
