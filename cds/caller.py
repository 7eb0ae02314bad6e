"""The CDS client behind a call: who it is (issued cards and feedback are tied to it, and
quotas count by it) and which FHIR servers the service may call back for it."""

from __future__ import annotations

from dataclasses import dataclass

from cds.fhir_servers import ServerPattern


@dataclass(frozen=True)
class CdsClient:
    iss: str = ""  # "": authentication is off (the local trial); no issuer is known
    tenant: str = ""
    # The issuer's allow-list from the trust file; None with authentication off, where
    # the local-trial rules apply (cds/fhir_servers.py).
    fhir_servers: tuple[ServerPattern, ...] | None = None


LOCAL_TRIAL_CLIENT = CdsClient()
