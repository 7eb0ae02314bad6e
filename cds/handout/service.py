"""The handout parts the service builds once at start-up, and the base URL of a link."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from cds.config import ConfigError, Settings
from cds.handout.keys import load_keys
from cds.handout.link import HandoutLinks, HandoutSealer
from cds.handout.page import HandoutPage, SiteContact
from cds.handout.texts import load_catalog
from cds.knowledge import Knowledge
from cds.net import is_loopback_host
from cds.storage import Store


@dataclass(frozen=True)
class Handouts:
    links: HandoutLinks
    page: HandoutPage

    @property
    def sealer(self) -> HandoutSealer:
        return self.links.sealer


def build_handouts(settings: Settings, knowledge: Knowledge, store: Store) -> Handouts | None:
    """None when the site turned handouts off (CDS_HANDOUT=off)."""
    if not settings.handout_enabled:
        return None
    catalog = load_catalog(knowledge, settings.handout_texts_dir)
    languages = settings.handout_languages or tuple(catalog.languages)
    unknown = [code for code in languages if code not in catalog.languages]
    if unknown:
        raise ConfigError(f"CDS_HANDOUT_LANGUAGES: no handout text for {', '.join(unknown)} "
                          f"(there are: {', '.join(catalog.languages)})")
    sealer = HandoutSealer(load_keys(settings.handout_key_file, store),
                           settings.handout_link_days * 86400)
    page = HandoutPage(catalog, knowledge, SiteContact(
        care_team=settings.handout_contact,
        emergency_number=settings.handout_emergency_number))
    return Handouts(HandoutLinks(sealer, catalog, languages), page)


def link_base_url(settings: Settings, request_root: str) -> str | None:
    """Where a card's handout link points: the configured public base URL the call came
    in on (else the first one); with none configured, this request's own root only when
    it is a loopback address (the local trial). Otherwise None: no link, because a Host
    header chosen by the caller must never decide where a link points."""
    bases = settings.public_base_urls
    if bases:
        called = _origin_and_path(request_root)
        for base in bases:
            if _origin_and_path(base + "/") == called:
                return base
        return bases[0]
    parts = urlsplit(request_root)
    if parts.scheme in ("http", "https") and parts.hostname and \
            is_loopback_host(parts.hostname):
        return request_root.rstrip("/")
    return None


def _origin_and_path(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port or default,
            parts.path.rstrip("/"))
