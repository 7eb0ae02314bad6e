"""`baclofen-cds handout`: make a link key, check handout texts, print a scenario's links.

    baclofen-cds handout new-key              a Fernet key for CDS_HANDOUT_KEY_FILE
    baclofen-cds handout check [--texts-dir]  load rules/handout/ (and a site's languages)
    baclofen-cds handout link FIXTURE|REQUEST [--base-url URL]
        the handout links of the cards a request gets, sealed with the key of the
        configured database (CDS_DATABASE_URL, as `serve` uses), so they open on that
        service; nothing is recorded as an issued card.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cds.config import ConfigError, Settings
from cds.knowledge import KnowledgeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baclofen-cds handout",
                                     description="Patient handouts (docs/handouts.md).")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("new-key", help="print a new key for CDS_HANDOUT_KEY_FILE")
    check = sub.add_parser("check", help="load and check the handout texts")
    check.add_argument("--texts-dir", help="a site's language files (CDS_HANDOUT_TEXTS_DIR)")
    link = sub.add_parser("link", help="print the handout links of a fixture or request")
    link.add_argument("request", help="a fixture name (see `fixtures list`), or a fixture "
                                      "or CDS Hooks request file")
    link.add_argument("--base-url", help="where the service is reached (default: the first "
                                         "CDS_PUBLIC_BASE_URL, else http://127.0.0.1:8080)")
    link.add_argument("--service", help="service id (default: from the fixture or the hook)")
    return parser


def run_handout_cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.action == "new-key":
            from cds.handout.keys import new_key

            print(new_key())
            return 0
        if args.action == "check":
            return _check(settings, args.texts_dir or settings.handout_texts_dir)
        return _link(settings, args)
    except (ConfigError, KnowledgeError) as error:
        print(f"baclofen-cds handout: {error}", file=sys.stderr)
        return 2


def _check(settings: Settings, texts_dir: str | None) -> int:
    from cds.handout.texts import load_catalog
    from cds.knowledge import load_knowledge

    catalog = load_catalog(load_knowledge(settings.rules_override), texts_dir)
    for code, texts in catalog.languages.items():
        print(f"{code} ({texts.name}): checked against: {texts.checked}")
    print(f"handouts linked from: {', '.join(sorted(catalog.link_kinds))}")
    return 0


def _link(settings: Settings, args: argparse.Namespace) -> int:
    from cds.app import load_clinical
    from cds.cli import _load_request
    from cds.fixtures import FIXTURE_DIR
    from cds.handout.service import build_handouts
    from cds.pipeline import HookPipeline
    from cds.services import ServiceRegistry, build_services, observation_code_tokens
    from cds.storage import Store

    path = Path(args.request)
    if not path.exists() and (FIXTURE_DIR / f"{args.request}.json").exists():
        path = FIXTURE_DIR / f"{args.request}.json"
    try:
        request, fixture_service = _load_request(str(path), None)
    except (OSError, ValueError) as error:
        print(f"baclofen-cds handout: cannot read {args.request}: {error}", file=sys.stderr)
        return 2
    settings = Settings(**{**settings.__dict__, "handout_enabled": True})
    knowledge, engine = load_clinical(settings)
    store = Store(settings.database_url)
    store.create_schema()
    handouts = build_handouts(settings, knowledge, store)
    registry = ServiceRegistry(build_services(observation_code_tokens(knowledge),
                                              shared_order_id=settings.shared_order_service_id))
    # No store: what is printed here was not shown to any clinician.
    pipeline = HookPipeline(settings, registry, knowledge, engine, None,
                            handouts=handouts.links if handouts else None)
    service_id = args.service or fixture_service or next(
        (s.id for s in registry.services if s.hook == request.get("hook")), None)
    if service_id is None:
        print("baclofen-cds handout: say which service with --service", file=sys.stderr)
        return 2
    base = (args.base_url or (settings.public_base_urls or ("http://127.0.0.1:8080",))[0])
    outcome = pipeline.call(service_id, request, handout_base_url=base.rstrip("/"))
    found = 0
    for card in outcome.response["cards"]:
        for link in card.get("links", []):
            if "/handout/" in link["url"]:
                found += 1
                print(f"{card['summary']}\n  {link['label']}\n  {link['url']}")
    if not found:
        print("no card of this request links a handout", file=sys.stderr)
        return 1
    return 0
