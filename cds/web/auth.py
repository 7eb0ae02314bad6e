"""Client authentication on every CDS call (discovery, services, feedback)."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g, jsonify, request

from cds.auth import Authenticator, AuthError, load_trust_config
from cds.caller import LOCAL_TRIAL_CLIENT, CdsClient
from cds.config import ConfigError, Settings
from cds.errors import operation_outcome
from cds.storage import StorageError, Store

log = logging.getLogger("cds.auth")

# Liveness/readiness probes come from the platform, and CORS preflights carry no
# credentials by design; everything under /cds-services is protected.
PROTECTED_PREFIX = "/cds-services"


def build_authenticator(settings: Settings, store: Store) -> Authenticator | None:
    if not settings.auth_enabled:
        return None
    if not settings.trust_file:
        raise ConfigError(
            "client authentication is on but CDS_TRUST_FILE names no trust file; "
            "configure trusted clients (docs/authentication.md) or set CDS_AUTH=off "
            "for a local trial"
        )
    trust = load_trust_config(settings.trust_file)
    if not settings.public_base_urls:
        raise ConfigError(
            "client authentication is on but CDS_PUBLIC_BASE_URL is not set; name the URL "
            "clients call (e.g. https://cds.example.org): each token's aud is checked "
            "against it, never against the request's Host header"
        )
    return Authenticator(trust, store, settings.public_base_urls)


def current_client() -> CdsClient:
    """The authenticated client of this request, with its FHIR-server allow-list; the
    local-trial client when authentication is off."""
    principal = g.get("principal")
    authenticator = current_app.extensions["cds"].authenticator
    if principal is None or authenticator is None:
        return LOCAL_TRIAL_CLIENT
    issuer = authenticator.trust.issuers.get(principal.iss)
    return CdsClient(iss=principal.iss, tenant=principal.tenant or "",
                     fhir_servers=issuer.fhir_servers if issuer else ())


def _unauthorized(status: int = 401, message: str = "Authentication required."):
    response = jsonify(operation_outcome(status, message))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="baclofen-cds", error="invalid_token"'
    return response


def register_authentication(app: Flask) -> None:
    @app.before_request
    def _authenticate():
        authenticator = current_app.extensions["cds"].authenticator
        if authenticator is None or request.method == "OPTIONS":
            return None
        if not request.path.startswith(PROTECTED_PREFIX):
            return None
        try:
            g.principal = authenticator.authenticate(
                request.headers.get("Authorization"), request.base_url
            )
        except AuthError as error:
            g.auth_failure = error.reason  # logged server-side; never the token itself
            return _unauthorized()
        except StorageError:
            # Without the replay store a replayed token could pass: fail closed.
            log.error("JWT replay store unavailable; refusing the call")
            return _unauthorized(503, "Authentication is unavailable right now; retry later.")
        return None
