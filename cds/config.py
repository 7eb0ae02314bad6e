"""Service configuration, read once from the environment with safe defaults."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from cds.fhir_servers import ServerPattern, ServerPatternError, parse_server_pattern
from cds.net import is_loopback_host


class ConfigError(ValueError):
    """A setting has a value the service cannot run with; the message names it."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):  # float() reads "nan" and "inf"; neither is a duration
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value <= minimum:
        raise ConfigError(f"{name} must be greater than {minimum}, got {value}")
    return value


def _switch(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be on or off, got {raw!r}")


def _languages(raw: str) -> tuple[str, ...]:
    """Comma-separated language codes (files of rules/handout/ or the site's texts dir)."""
    codes = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for code in codes:
        if not code.replace("-", "").isalnum() or len(code) > 16:
            raise ConfigError(f"CDS_HANDOUT_LANGUAGES: {code!r} is not a language code")
    return codes


def _bounded_text(env: dict[str, str], name: str, default: str, limit: int) -> str:
    value = " ".join((env.get(name) or default).split())
    if len(value) > limit:
        raise ConfigError(f"{name} must be at most {limit} characters")
    return value


def _public_base_urls(raw: str) -> tuple[str, ...]:
    """Comma-separated base URLs; https, or http on loopback (local tests and trials)."""
    urls = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"CDS_PUBLIC_BASE_URL: {item!r} is not an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ConfigError(f"CDS_PUBLIC_BASE_URL: {item!r} must not have a query or fragment")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError(
                f"CDS_PUBLIC_BASE_URL: {item!r} must be https (plain http only on loopback)")
        urls.append(item.rstrip("/"))
    return tuple(urls)


def _server_patterns(raw: str) -> tuple[ServerPattern, ...]:
    """Comma-separated FHIR base URLs; append ` private` to one to allow private and
    loopback addresses for it (e.g. `https://fhir.lab.internal/r4 private`)."""
    patterns = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        url, _, flag = item.partition(" ")
        if flag.strip() not in ("", "private"):
            raise ConfigError(f"CDS_FHIR_ALLOWED_SERVERS: unknown flag {flag.strip()!r}")
        try:
            patterns.append(parse_server_pattern(
                {"url": url, "private_network": flag.strip() == "private"},
                "CDS_FHIR_ALLOWED_SERVERS", allow_http_loopback=True))
        except ServerPatternError as error:
            raise ConfigError(str(error)) from None
    return tuple(patterns)


def _host_port(raw: str, name: str) -> tuple[str, int] | None:
    """HOST:PORT (an IPv6 host in brackets); None when not set."""
    raw = raw.strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be HOST:PORT, got {raw!r}")
    return host, int(port)


def _origins(raw: str) -> tuple[str, ...] | None:
    """Comma-separated origins (scheme://host[:port]) or *; None when not set."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                              or parts.path or parts.query):
            raise ConfigError(f"CDS_CORS_ORIGINS: {origin!r} is not an origin "
                              "(scheme://host[:port])")
    return origins or None


@dataclass(frozen=True)
class Settings:
    """Everything configurable; see the configuration table in the README."""

    database_url: str = "sqlite:///baclofen-cds.db"
    auth_enabled: bool = True
    trust_file: str | None = None
    # The URLs clients call (JWT `aud`): scheme, host and any path prefix, no trailing slash.
    public_base_urls: tuple[str, ...] = ()
    rules_override: str | None = None
    # Request limits: every one answers a clear 413/400 when exceeded.
    max_body_bytes: int = 5 * 1024 * 1024
    max_resources: int = 20_000
    # Resources the facts read in detail (modelled, on the timeline or weighed as signs):
    # a real record has tens; each costs about a millisecond (docs/security.md, Limits).
    max_read_resources: int = 1_000
    # Hook calls one client may have in progress in one worker (then 429).
    max_calls_per_client: int = 16
    max_json_depth: int = 64
    # FHIR-server fallback: per-call timeouts, one deadline for the whole gathering step.
    fhir_connect_timeout: float = 2.0
    fhir_read_timeout: float = 5.0
    # A fraction of the time an EHR waits for a CDS answer (docs/performance.md): the
    # rest of the call must still fit in that window.
    fhir_deadline: float = 1.0
    fhir_max_pages: int = 10
    fhir_max_response_bytes: int = 20 * 1024 * 1024
    # Browser origins allowed (CORS). None: any origin in the local trial, none otherwise.
    # FHIR servers the local trial (authentication off) may call besides loopback ones;
    # with authentication on, each issuer's `fhir_servers` in the trust file decide.
    fhir_allowed_servers: tuple[ServerPattern, ...] = ()
    fhir_ca_bundle: str | None = None  # CA certificates for FHIR servers (PEM file)
    cors_origins: tuple[str, ...] | None = None
    # The address `serve` binds (CDS_HOST); with authentication off and a loopback address
    # this is the local trial, the only mode where any browser origin may call.
    bind_host: str = "127.0.0.1"
    metrics_token: str | None = None
    # (host, port) of a separate listener for /metrics and /reports/feedback only.
    operator_bind: tuple[str, int] | None = None
    # Feedback entries one client may store per hour (then 429); see cds/feedback.py.
    feedback_quota_per_hour: int = 10_000
    # ... and bytes as stored (an entry takes at most 32 KiB; a usual one well under 1 KiB).
    feedback_bytes_per_hour: int = 20 * 1024 * 1024
    # CDS Hooks 2.0 requires a valid access token on every FHIR call; only an operator
    # testing against an open FHIR server (e.g. a public sandbox) turns this on.
    fhir_allow_without_token: bool = False
    # One service id for order-select and order-sign (CDS Hooks stale-guidance updates);
    # off by default because clients such as the CDS Hooks Sandbox key services by id.
    shared_order_service_id: bool = False
    # Patient handouts linked from taper and pump cards (docs/handouts.md).
    handout_enabled: bool = True
    # Fernet keys, one a line, the first seals new links; without it the service makes
    # one and keeps it in its database (cds/handout/keys.py).
    handout_key_file: str | None = None
    # local policy: a link lives 30 days, long enough for a patient to open the sheet
    # again through most of a taper (14-42 days in the fixtures), short enough that an
    # old link does not circulate; the printed or saved PDF is what the patient keeps.
    handout_link_days: int = 30
    handout_languages: tuple[str, ...] = ()  # () = every language of rules/handout/
    handout_texts_dir: str | None = None  # a site's language files (added or replaced)
    handout_contact: str = ""  # whom to call, printed on every handout; "" = a blank line
    handout_emergency_number: str = "911"

    def __post_init__(self) -> None:
        if self.cors_origins and "*" in self.cors_origins and not self.local_trial:
            raise ConfigError(
                "CDS_CORS_ORIGINS=* (any browser origin) is only for the local trial "
                "(authentication off, loopback); list the origins that may call, e.g. "
                "https://sandbox.cds-hooks.org"
            )

    @property
    def local_trial(self) -> bool:
        return not self.auth_enabled and is_loopback_host(self.bind_host)

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        if self.cors_origins is None:
            return ("*",) if self.local_trial else ()
        return self.cors_origins

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("CDS_DATABASE_URL") or cls.database_url,
            auth_enabled=_switch(env, "CDS_AUTH", True),
            trust_file=env.get("CDS_TRUST_FILE") or None,
            public_base_urls=_public_base_urls(env.get("CDS_PUBLIC_BASE_URL", "")),
            rules_override=env.get("CDS_RULES_OVERRIDE") or None,
            max_body_bytes=_int(env, "CDS_MAX_BODY_BYTES", cls.max_body_bytes, 1024),
            max_resources=_int(env, "CDS_MAX_RESOURCES", cls.max_resources, 1),
            max_read_resources=_int(env, "CDS_MAX_READ_RESOURCES", cls.max_read_resources, 1),
            max_calls_per_client=_int(env, "CDS_MAX_CALLS_PER_CLIENT",
                                      cls.max_calls_per_client, 1),
            max_json_depth=_int(env, "CDS_MAX_JSON_DEPTH", cls.max_json_depth, 8),
            fhir_connect_timeout=_float(env, "CDS_FHIR_CONNECT_TIMEOUT", cls.fhir_connect_timeout),
            fhir_read_timeout=_float(env, "CDS_FHIR_READ_TIMEOUT", cls.fhir_read_timeout),
            fhir_deadline=_float(env, "CDS_FHIR_DEADLINE", cls.fhir_deadline),
            fhir_max_pages=_int(env, "CDS_FHIR_MAX_PAGES", cls.fhir_max_pages, 1),
            fhir_max_response_bytes=_int(
                env, "CDS_FHIR_MAX_RESPONSE_BYTES", cls.fhir_max_response_bytes, 1024
            ),
            fhir_allowed_servers=_server_patterns(env.get("CDS_FHIR_ALLOWED_SERVERS", "")),
            fhir_ca_bundle=env.get("CDS_FHIR_CA_BUNDLE") or None,
            cors_origins=_origins(env.get("CDS_CORS_ORIGINS", "")),
            bind_host=env.get("CDS_HOST") or cls.bind_host,
            metrics_token=env.get("CDS_METRICS_TOKEN") or None,
            operator_bind=_host_port(env.get("CDS_OPERATOR_BIND", ""), "CDS_OPERATOR_BIND"),
            feedback_quota_per_hour=_int(env, "CDS_FEEDBACK_QUOTA_PER_HOUR",
                                         cls.feedback_quota_per_hour, 1),
            feedback_bytes_per_hour=_int(env, "CDS_FEEDBACK_BYTES_PER_HOUR",
                                         cls.feedback_bytes_per_hour, 1024),
            fhir_allow_without_token=_switch(env, "CDS_FHIR_ALLOW_WITHOUT_TOKEN", False),
            shared_order_service_id=_switch(env, "CDS_SHARED_ORDER_SERVICE_ID", False),
            handout_enabled=_switch(env, "CDS_HANDOUT", True),
            handout_key_file=env.get("CDS_HANDOUT_KEY_FILE") or None,
            handout_link_days=_handout_days(env),
            handout_languages=_languages(env.get("CDS_HANDOUT_LANGUAGES", "")),
            handout_texts_dir=env.get("CDS_HANDOUT_TEXTS_DIR") or None,
            handout_contact=_bounded_text(env, "CDS_HANDOUT_CONTACT", "", 200),
            handout_emergency_number=_bounded_text(env, "CDS_HANDOUT_EMERGENCY_NUMBER",
                                                   cls.handout_emergency_number, 20),
        )


def _handout_days(env: dict[str, str]) -> int:
    days = _int(env, "CDS_HANDOUT_LINK_DAYS", Settings.handout_link_days, 1)
    if days > 365:
        raise ConfigError(f"CDS_HANDOUT_LINK_DAYS must be at most 365, got {days}")
    return days
