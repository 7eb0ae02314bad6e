"""Run the app under gunicorn: one worker process per core, gevent workers by default
(cds/serving_model.py says why)."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from cds.config import Settings
from cds.serving_model import (
    DEFAULT_THREADS,
    DEFAULT_WORKER_CLASS,
    GUNICORN_WORKER_CLASS,
    HEADER_SECONDS,
    LISTEN_BACKLOG,
    WORKER_CONNECTIONS,
    default_workers,
)

__all__ = ["DEFAULT_THREADS", "DEFAULT_WORKER_CLASS", "default_workers", "run_server",
           "validate_startup"]


def validate_startup(settings: Settings) -> str | None:
    """Load everything a worker loads, once, so a bad configuration stops start-up here."""
    from cds.app import load_clinical
    from cds.handout.service import build_handouts
    from cds.storage import StorageError, Store
    from cds.web.auth import build_authenticator

    try:
        knowledge, _engine = load_clinical(settings)
        store = Store(settings.database_url)
        store.create_schema()
        build_authenticator(settings, store)
        # Checks the handout texts, and makes the link key once, before any worker does.
        build_handouts(settings, knowledge, store)
    except StorageError as error:
        return f"database: {error}"
    except Exception as error:  # noqa: BLE001 - report any start-up fault plainly
        return f"{type(error).__name__}: {error}"
    return None


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from cds.app import create_app

        return create_app()


def _post_worker_init(_worker) -> None:
    import gc

    from cds.log_bounds import bound_all_handlers

    bound_all_handlers()  # gunicorn's own handlers exist by now

    # Start-up leaves ~100k long-lived objects (FHIR models, rules, schemas). Freezing
    # them keeps every later full collection from rescanning them: p99 of a 200 KB hook
    # call dropped from ~57 ms to ~8 ms in our measurements (docs/performance.md).
    gc.collect()
    gc.freeze()


def _child_exit(_arbiter, worker) -> None:
    from cds.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)
    if hasattr(worker, "load_slot"):
        from cds.gevent_worker import LOADS

        LOADS.release(worker.load_slot)


def _pre_fork(_arbiter, worker) -> None:
    """gevent workers: a slot in the shared connection counts (cds/gevent_worker.py)."""
    from cds.gevent_worker import LOADS

    worker.load_slot = LOADS.claim()


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run_server(
    host: str,
    port: int,
    workers: int,
    threads: int,
    certfile: str | None = None,
    keyfile: str | None = None,
    worker_class: str = DEFAULT_WORKER_CLASS,
    operator_bind: tuple[str, int] | None = None,
    worker_connections: int = WORKER_CONNECTIONS,
) -> None:
    tls = {"certfile": certfile, "keyfile": keyfile} if certfile and keyfile else {}
    binds = [_bind(host, port)]
    if operator_bind:
        binds.append(_bind(*operator_bind))  # /metrics and /reports/feedback only
    _Gunicorn(
        {
            **tls,
            "bind": binds,
            "workers": max(1, workers),
            "threads": max(1, threads),
            "worker_class": GUNICORN_WORKER_CLASS[worker_class],
            "worker_connections": max(1, worker_connections),
            # Connections the kernel completes before a worker accepts them (Linux caps it
            # at net.core.somaxconn, 4096 by default). A full queue makes a caller's
            # handshake wait for a retransmission (1 s, then 3 s): a flood of connections
            # must find room behind it (issue 26.3).
            "backlog": LISTEN_BACKLOG,
            # Async workers give a peer this long for a request's headers (then close).
            "keepalive": HEADER_SECONDS,
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": None,  # our own structured request log replaces it
            "errorlog": "-",
            "loglevel": "info",
            "child_exit": _child_exit,
            "post_worker_init": _post_worker_init,
            **({"pre_fork": _pre_fork} if worker_class == "gevent" else {}),
            # gunicorn 25.1+ opens a control socket at one fixed path per user: every
            # instance would fight over it, and it can resize or stop the server.
            "control_socket_disable": True,
            # gunicorn takes SCRIPT_NAME (and PATH_INFO) from request headers when the peer
            # is in forwarded_allow_ips, loopback by default: any local client could then
            # move the path the app routes on, or get a 500 "Configuration problem" by
            # naming a SCRIPT_NAME the path does not start with. No proxy of ours sets
            # them (a path prefix belongs in CDS_PUBLIC_BASE_URL), so none is trusted.
            "forwarder_headers": "",
        }
    ).run()
