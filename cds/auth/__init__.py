"""CDS Hooks 2.0 client authentication: trust configuration, JWK Sets, JWT verification.

The web layer builds one Authenticator at start-up and calls
``authenticate(request.headers.get("Authorization"), request.url)`` on every
call (discovery, services, feedback); any AuthError becomes a bare 401.
"""

from cds.auth.jwks import JwksCache, JwksUnavailable
from cds.auth.trust import TrustConfig, TrustConfigError, TrustedIssuer, load_trust_config
from cds.auth.verify import Authenticator, AuthError, Principal, ReplayStore

__all__ = [
    "AuthError",
    "Authenticator",
    "JwksCache",
    "JwksUnavailable",
    "Principal",
    "ReplayStore",
    "TrustConfig",
    "TrustConfigError",
    "TrustedIssuer",
    "load_trust_config",
]
