"""The `baclofen-cds` command: serve, evaluate, and helpers for integrators."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from cds.config import ConfigError, Settings
from cds.net import is_loopback_host
from cds.serving_model import (
    DEFAULT_THREADS,
    WORKER_CLASSES,
    WORKER_CONNECTIONS,
    default_workers,
    patch_for_gevent,
    worker_class_from,
)


def _configure_logging() -> None:
    level = os.environ.get("CDS_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(message)s" if level != "DEBUG" else None)
    from cds.log_bounds import bound_all_handlers

    bound_all_handlers()


def cmd_serve(args: argparse.Namespace) -> int:
    # Files the service makes are its user's alone (metrics, SQLite's -wal and -shm).
    os.umask(0o077)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before anything imports prometheus_client: /metrics then sums every worker.
        import atexit
        import shutil
        import tempfile

        metrics_dir = tempfile.mkdtemp(prefix="baclofen-cds-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        master = os.getpid()

        def _remove_metrics_dir() -> None:
            if os.getpid() == master:  # forked workers run atexit too; only the master cleans
                shutil.rmtree(metrics_dir, ignore_errors=True)

        atexit.register(_remove_metrics_dir)
    if args.no_auth:
        os.environ["CDS_AUTH"] = "off"
    os.environ["CDS_HOST"] = args.host  # the workers' settings tell the local trial by it
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"baclofen-cds: configuration error: {error}", file=sys.stderr)
        return 2
    refusal = bind_refusal(args, settings)
    if refusal:
        print(f"baclofen-cds: {refusal}", file=sys.stderr)
        return 2
    from cds.metrics import reset_multiprocess_dir
    from cds.server import run_server, validate_startup

    try:
        # Before the workers start: counts of an earlier run must not add to this one's.
        reset_multiprocess_dir()
    except (OSError, RuntimeError) as error:
        print(f"baclofen-cds: cannot start: metrics directory: {error}", file=sys.stderr)
        return 2

    problem = validate_startup(settings)
    if problem:
        print(f"baclofen-cds: cannot start: {problem}", file=sys.stderr)
        return 2
    if not settings.auth_enabled:
        logging.getLogger("cds").warning(
            "client authentication is OFF (CDS_AUTH=off): for local trials only"
        )
    if bool(args.certfile) != bool(args.keyfile):
        print("baclofen-cds: --certfile and --keyfile go together", file=sys.stderr)
        return 2
    run_server(args.host, args.port, args.workers, args.threads, args.certfile, args.keyfile,
               args.worker_class, settings.operator_bind, args.worker_connections)
    return 0


def bind_refusal(args: argparse.Namespace, settings: Settings) -> str | None:
    """Why `serve` must not listen as asked, or None. Off loopback, tokens, feedback and
    FHIR access tokens would cross the network in the clear without TLS."""
    tls = bool(args.certfile and args.keyfile) or args.behind_tls_proxy
    operator = settings.operator_bind
    if operator and not is_loopback_host(operator[0]) and not tls:
        return (f"refusing to serve the operator endpoints over plain HTTP on a non-loopback "
                f"address ({operator[0]}); bind CDS_OPERATOR_BIND to loopback, or give TLS.")
    if is_loopback_host(args.host):
        return None
    if not settings.auth_enabled and not args.allow_insecure:
        return (f"refusing to serve without client authentication on a non-loopback address "
                f"({args.host}). Turn authentication on, or pass --allow-insecure if you "
                "really mean it.")
    if not tls:
        return (f"refusing to serve plain HTTP on a non-loopback address ({args.host}). "
                "Give --certfile and --keyfile, or pass --behind-tls-proxy when a proxy in "
                "front terminates TLS and only it can reach this address.")
    return None


def _load_request(path: str, now_iso: str | None) -> tuple[dict, str | None]:
    """A plain CDS Hooks request, or a fixture (dates resolved against now)."""
    document = json.loads(Path(path).read_text())
    if isinstance(document, dict) and "request" in document and "expect" in document:
        from datetime import UTC, datetime

        from cds.fixtures import load_fixture

        now = datetime.fromisoformat(now_iso) if now_iso else datetime.now(UTC)
        fixture = load_fixture(Path(path), now)
        return fixture.request, fixture.service
    return document, None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cds.app import create_app

    try:
        request, fixture_service = _load_request(args.request, args.now)
    except (OSError, ValueError) as error:
        print(f"baclofen-cds: cannot read {args.request}: {error}", file=sys.stderr)
        return 2
    os.environ["CDS_AUTH"] = "off"  # evaluate runs in-process, no client to authenticate
    settings = Settings.from_env()
    # A throwaway database, so no handout links: their key would die with it (a link
    # that opens on the service: `baclofen-cds handout link`).
    settings = Settings(**{**settings.__dict__, "database_url": "sqlite://", "auth_enabled": False,
                           "handout_enabled": False})
    app = create_app(settings)
    service_id = args.service or fixture_service or _service_for_hook(app, request)
    if service_id is None:
        print("baclofen-cds: say which service with --service (no service has that hook)",
              file=sys.stderr)
        return 2
    response = app.test_client().post(f"/cds-services/{service_id}", json=request)
    print(json.dumps(response.get_json(), indent=2))
    return 0 if response.status_code == 200 else 1


def _service_for_hook(app: Any, request: Any) -> str | None:
    hook = request.get("hook") if isinstance(request, dict) else None
    for service in app.extensions["cds"].registry.services:
        if service.hook == hook:
            return service.id
    return None


def cmd_fixtures(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from cds.fixtures import FIXTURE_DIR, fixture_groups, list_fixtures, load_fixture

    now = datetime.now(UTC)
    if args.action == "list":
        for group in fixture_groups():
            print(f"{group.name}: {group.about} ({len(group.names)})")
            if group.brief and not args.all:
                prefix = group.names[0].split("-")[0]
                print(f"  {prefix}-*: not shown; fixtures list --all shows them\n")
                continue
            for name in group.names:
                fixture = load_fixture(FIXTURE_DIR / f"{name}.json", now)
                print(f"  {name:45} {fixture.service:30} {fixture.title}")
            print()
        return 0
    matches = [p for p in list_fixtures() if p.stem == args.name]
    if not matches:
        print(f"baclofen-cds: no fixture named {args.name!r}", file=sys.stderr)
        return 2
    print(json.dumps(load_fixture(matches[0], now).request, indent=2))
    return 0


def cmd_feedback_report(args: argparse.Namespace) -> int:
    from cds.report import build_report, parse_since, render_csv, render_table, report_json
    from cds.storage import Store

    try:
        since = parse_since(args.since) if args.since else None
        settings = Settings.from_env()
    except (ValueError, ConfigError) as error:
        print(f"baclofen-cds: {error}", file=sys.stderr)
        return 2
    store = Store(settings.database_url)
    store.create_schema()  # an empty report for a service that never ran, not a crash
    report = build_report(store, since)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    elif args.csv:
        sys.stdout.write(render_csv(report))
    else:
        sys.stdout.write(render_table(report))
    return 0


DELEGATED = {
    "handout": ("cds.handout.cli", "run_handout_cli"),
    "keys": ("cds.auth.keys_cli", "run_keys_cli"),
    "knowledge": ("cds.knowledge.cli", "run_knowledge_cli"),
    "taper": ("cds.taper.cli", "run_taper_cli"),
}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


def _env_switch(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baclofen-cds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service under a production WSGI server")
    serve.add_argument("--host", default=os.environ.get("CDS_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CDS_PORT", "8080")))
    serve.add_argument("--workers", type=int, default=_env_int("CDS_WORKERS", default_workers()),
                       help="worker processes (default: one per CPU core)")
    serve.add_argument("--worker-class", choices=WORKER_CLASSES,
                       default=worker_class_from([]),
                       help="gevent (default): slow peers and FHIR-server waits cost a "
                       "greenlet, not a worker; gthread: one thread per connection")
    serve.add_argument("--threads", type=int, default=_env_int("CDS_THREADS", DEFAULT_THREADS),
                       help="threads per worker with --worker-class gthread (default 1)")
    serve.add_argument("--worker-connections", type=int,
                       default=_env_int("CDS_WORKER_CONNECTIONS", WORKER_CONNECTIONS),
                       help="connections one gevent worker holds at once (default "
                       f"{WORKER_CONNECTIONS}); at the limit, a new connection replaces the "
                       "one waiting longest without a request")
    serve.add_argument("--certfile", default=os.environ.get("CDS_TLS_CERTFILE"),
                       help="serve HTTPS with this PEM certificate (or terminate TLS in front)")
    serve.add_argument("--keyfile", default=os.environ.get("CDS_TLS_KEYFILE"),
                       help="the certificate's PEM private key")
    serve.add_argument("--no-auth", action="store_true",
                       help="accept calls without client JWTs (local trials only)")
    serve.add_argument("--allow-insecure", action="store_true",
                       help="allow --no-auth on a non-loopback address")
    serve.add_argument("--behind-tls-proxy", action="store_true",
                       default=_env_switch("CDS_BEHIND_TLS_PROXY"),
                       help="a TLS-terminating proxy is in front: allow plain HTTP on a "
                       "non-loopback address")
    serve.set_defaults(func=cmd_serve)

    evaluate = sub.add_parser("evaluate", help="print the response to a request file, no server")
    evaluate.add_argument("request", help="a CDS Hooks request JSON file, or a fixture file")
    evaluate.add_argument("--service", help="service id (default: from the fixture or the hook)")
    evaluate.add_argument("--now", help="ISO date-time that fixture dates are relative to")
    evaluate.set_defaults(func=cmd_evaluate)

    fixtures = sub.add_parser("fixtures", help="list fixtures or render one as a request")
    fixtures.add_argument("action", choices=["list", "render"])
    fixtures.add_argument("name", nargs="?")
    fixtures.add_argument("--all", action="store_true",
                          help="list the probe rounds' scenarios too, not only their count")
    fixtures.set_defaults(func=cmd_fixtures)

    report = sub.add_parser("feedback-report",
                            help="cards shown, accepted and overridden per card kind "
                                 "(reads CDS_DATABASE_URL)")
    report.add_argument("--since", help="only cards issued from this date (YYYY-MM-DD) or time")
    report_format = report.add_mutually_exclusive_group()
    report_format.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    report_format.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(func=cmd_feedback_report)
    for name, help_text in (
        ("handout", "patient handouts: a link key, a check of the texts, a scenario's links"),
        ("keys", "generate a test key pair and sign client JWTs (integrators)"),
        ("taper", "print a supervised taper plan for a daily dose and product"),
        ("knowledge", "check rules/ (and a site override) or write the review sheet"),
    ):
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"] and worker_class_from(argv) == "gevent":
        patch_for_gevent()  # before ssl, requests or psycopg are imported (serving_model)
    _configure_logging()
    # Subcommands with their own argument parsers, owned by their packages.
    if argv and argv[0] in DELEGATED:
        module_name, function_name = DELEGATED[argv[0]]
        module = __import__(module_name, fromlist=[function_name])
        return int(getattr(module, function_name)(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
