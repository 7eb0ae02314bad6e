"""Application factory: builds the service's parts once, then wires the HTTP layer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.routing import Map

from cds.config import Settings
from cds.pipeline import HookPipeline
from cds.services import ServiceRegistry, build_services, observation_code_tokens
from cds.storage import Store
from cds.web import discovery, handout, health, hooks, preview, reports
from cds.web.admission import register_admission
from cds.web.auth import build_authenticator, register_authentication
from cds.web.errors import register_error_handlers
from cds.web.json_provider import OrjsonProvider
from cds.web.metrics import bp as metrics_bp
from cds.web.metrics import register_metrics, register_operator_bind
from cds.web.request_log import register_request_log
from cds.web.security_headers import register_security_headers

log = logging.getLogger(__name__)


@dataclass
class ServiceCore:
    """What every request handler needs, built once at start-up."""

    settings: Settings
    knowledge: Any
    engine: Any
    registry: ServiceRegistry
    store: Store
    pipeline: HookPipeline
    authenticator: Any = None
    readiness: Any = None  # cds.web.health.DatabaseReadiness
    handouts: Any = None  # cds.handout.service.Handouts, None when turned off


class NoRedirectMap(Map):
    """Routing never redirects. Werkzeug's redirects (merging `//`, adding a trailing
    slash, canonical defaults) answer 308 with a Location built from the request's Host
    header, so a client chose where it pointed (`/preview//fixtures` with
    `Host: evil.example`). Now `//` inside a path is a 404, and a trailing slash is
    tolerated in place, as the `aud` check forgives it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "merge_slashes": False, "strict_slashes": False,
                                   "redirect_defaults": False})


class CdsFlask(Flask):
    url_map_class = NoRedirectMap  # before Flask adds its first rule (/static)


def load_clinical(settings: Settings) -> tuple[Any, Any]:
    """Load rules/ (validating any site override) and build the rules engine."""
    from cds.assessment import ClinicalEngine
    from cds.knowledge import load_knowledge

    knowledge = load_knowledge(settings.rules_override)
    return knowledge, ClinicalEngine(knowledge)


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Any = None,
    engine: Any = None,
    clock: Callable[[], datetime] | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    if knowledge is None or engine is None:
        knowledge, engine = load_clinical(settings)
    store = Store(settings.database_url)
    store.create_schema()
    registry = ServiceRegistry(
        build_services(observation_code_tokens(knowledge),
                       shared_order_id=settings.shared_order_service_id)
    )
    from cds.handout.service import build_handouts

    handouts = build_handouts(settings, knowledge, store)
    pipeline_kwargs = {"clock": clock} if clock else {}
    pipeline = HookPipeline(settings, registry, knowledge, engine, store,
                            handouts=handouts.links if handouts else None, **pipeline_kwargs)

    app = CdsFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrjsonProvider(app)
    authenticator = build_authenticator(settings, store)
    core = ServiceCore(settings, knowledge, engine, registry, store, pipeline, authenticator,
                       health.DatabaseReadiness(), handouts)
    app.extensions["cds"] = core

    if settings.allowed_origins:  # any origin only in the local trial (cds.config)
        CORS(
            app,
            origins=list(settings.allowed_origins),
            allow_headers=["Authorization", "Content-Type"],
            methods=["GET", "POST", "OPTIONS"],
            max_age=600,
        )
    register_request_log(app)
    register_operator_bind(app)  # before authentication: the operator address has no JWTs
    register_authentication(app)
    register_admission(app)  # after authentication: calls are counted per client
    register_metrics(app)  # after authentication: only authenticated bodies are read
    register_error_handlers(app)
    register_security_headers(app)
    for blueprint in (discovery.bp, hooks.bp, health.bp, metrics_bp, reports.bp, preview.bp,
                      handout.bp):
        app.register_blueprint(blueprint)
    return app
