"""The handout link on a card: the plan, sealed so it can be neither read nor changed.

A link is `<public base URL>/handout/<token>?lang=<code>`. The token is the plan's
compact JSON (cds.handout.plan), compressed and sealed with Fernet (the `cryptography`
package: AES-CBC with an HMAC-SHA256 over the whole token and its timestamp). Sealed
rather than only signed: the URL passes through browser histories, proxies and EHR logs,
and a dose with its dates is health information even without a name. The language is
inside the seal and repeated in `lang` for people reading the URL; a `lang` that differs
from the sealed one is a changed link. The timestamp makes links expire
(CDS_HANDOUT_LINK_DAYS, and never before the end of a taper's first day without
baclofen), checked when the link is opened.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from cryptography.fernet import InvalidToken, MultiFernet

from cds.handout.plan import (
    HandoutPlan,
    MalformedPlan,
    from_payload,
    from_pump,
    from_taper_plan,
    to_payload,
)
from cds.handout.texts import HandoutCatalog

if TYPE_CHECKING:
    from cds.findings import Finding
    from cds.taper.proposal import TaperProposal

MAX_TOKEN_CHARS = 4096  # a real plan seals to a few hundred characters
MAX_PLAN_BYTES = 64 * 1024  # decompressed; a real plan is well under 4 KB
CLOCK_SKEW_SECONDS = 60  # a link stamped this far in the future still opens (other instance)


class LinkError(Exception):
    """Why a link cannot be opened; `reason` picks the page's wording."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason  # "invalid" | "expired" | "language"
        self.status = status


@dataclass(frozen=True)
class OpenedLink:
    plan: HandoutPlan
    language: str
    issued_at: float  # seconds since the epoch
    expires_at: float


class HandoutSealer:
    """Seals plans into tokens and opens them; built once at start-up."""

    def __init__(self, keys: MultiFernet, ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def seal(self, plan: HandoutPlan, language: str) -> str:
        data = orjson.dumps(to_payload(plan, language))  # compact; on every taper card
        token = self.keys.encrypt_at_time(zlib.compress(data, 9), int(self.clock()))
        return token.decode("ascii").rstrip("=")  # padding is restored when opened

    def open(self, token: str, language: str | None) -> OpenedLink:
        """The plan behind `token`; LinkError for anything that is not a live link of ours."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS \
                or not token.isascii():
            raise LinkError("invalid", 400)
        raw = (token + "=" * (-len(token) % 4)).encode("ascii")
        try:
            issued = self.keys.extract_timestamp(raw)  # checks the HMAC first
        except InvalidToken:
            raise LinkError("invalid", 400) from None
        now = self.clock()
        if issued > now + CLOCK_SKEW_SECONDS:
            raise LinkError("invalid", 400)
        try:
            compressed = self.keys.decrypt(raw)
            inflater = zlib.decompressobj()
            data = inflater.decompress(compressed, MAX_PLAN_BYTES)
            if inflater.unconsumed_tail or not inflater.eof:
                raise LinkError("invalid", 400)
            plan, sealed_language = from_payload(json.loads(data))
        except (InvalidToken, zlib.error, ValueError, RecursionError):
            # MalformedPlan and JSON errors are ValueErrors: never a 500, never shown.
            raise LinkError("invalid", 400) from None
        if language is not None and language != sealed_language:
            raise LinkError("invalid", 400)  # the visible language was changed
        expires_at = max(issued + self.ttl_seconds, _plan_end(plan))
        if now > expires_at:
            raise LinkError("expired", 410)
        return OpenedLink(plan, sealed_language, float(issued), float(expires_at))


def _plan_end(plan: HandoutPlan) -> float:
    """The end of a taper's first day without baclofen (0 for other plans): a patient
    follows the sheet to its last day, so the link works at least that long."""
    stop = plan.taper.stop if plan.taper is not None else None
    if stop is None:
        return 0.0
    return datetime.combine(stop + timedelta(days=1), datetime.min.time(), UTC).timestamp()


class HandoutLinks:
    """Which cards link a handout, and the link itself; built once at start-up."""

    def __init__(self, sealer: HandoutSealer, catalog: HandoutCatalog,
                 languages: Sequence[str]) -> None:
        self.sealer = sealer
        self.catalog = catalog
        self.languages = tuple(languages)

    def for_base_url(self, base_url: str) -> CardLinks:
        return CardLinks(self, base_url.rstrip("/"))


@dataclass(frozen=True)
class CardLinks:
    """The handout links of one hook call, built on the base URL that call reached."""

    handouts: HandoutLinks
    base_url: str

    def links(self, finding: Finding, proposal: TaperProposal | None) -> list[dict[str, Any]]:
        """CDS Hooks links (type absolute), one per language, or none for this card."""
        plan = self.plan_for(finding, proposal)
        if plan is None:
            return []
        out = []
        for language in self.handouts.languages:
            texts = self.handouts.catalog.language(language)
            token = self.handouts.sealer.seal(plan, language)
            out.append({"label": texts["link"][plan.kind],
                        "url": f"{self.base_url}/handout/{token}?lang={quote(language)}",
                        "type": "absolute"})
        return out

    def plan_for(self, finding: Finding, proposal: TaperProposal | None
                 ) -> HandoutPlan | None:
        handout = self.handouts.catalog.link_kinds.get(finding.kind.kind)
        if handout == "taper":
            if proposal is None or proposal.plan is None:
                return None
            return from_taper_plan(proposal.plan, proposal.via_tube)
        if handout == "pump" and finding.route == "intrathecal":
            pump = finding.subject.pump
            return from_pump(pump.depletion_at if pump is not None else None)
        return None


__all__ = ["CardLinks", "HandoutLinks", "HandoutSealer", "LinkError", "MalformedPlan",
           "OpenedLink"]
