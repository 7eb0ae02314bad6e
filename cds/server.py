"""Run the app under gunicorn (several worker processes, threads for FHIR-server I/O)."""

from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication

from cds.config import Settings

# Hook calls with prefetch are CPU-bound: one worker per core, one thread each, gives the
# most throughput and the lowest tail latency (threads share a GIL; docs/performance.md).
# Sites whose EHR relies on the FHIR-server fallback raise --threads (docs/deployment.md).
DEFAULT_THREADS = 1


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def validate_startup(settings: Settings) -> str | None:
    """Load everything a worker loads, once, so a bad configuration stops start-up here."""
    from cds.app import load_clinical
    from cds.storage import StorageError, Store
    from cds.web.auth import build_authenticator

    try:
        load_clinical(settings)
        store = Store(settings.database_url)
        store.create_schema()
        build_authenticator(settings, store)
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


def _on_starting(_arbiter) -> None:
    from cds.metrics import reset_multiprocess_dir

    reset_multiprocess_dir()  # counts from an earlier run must not add to this one


def _post_worker_init(_worker) -> None:
    import gc

    # Start-up leaves ~100k long-lived objects (FHIR models, rules, schemas). Freezing
    # them keeps every later full collection from rescanning them: p99 of a 200 KB hook
    # call dropped from ~57 ms to ~8 ms in our measurements (docs/performance.md).
    gc.collect()
    gc.freeze()


def _child_exit(_arbiter, worker) -> None:
    from cds.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def run_server(
    host: str,
    port: int,
    workers: int,
    threads: int,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    tls = {"certfile": certfile, "keyfile": keyfile} if certfile and keyfile else {}
    _Gunicorn(
        {
            **tls,
            "bind": f"{host}:{port}",
            "workers": max(1, workers),
            "threads": max(1, threads),
            "worker_class": "gthread",
            "timeout": 30,
            "graceful_timeout": 10,
            "accesslog": None,  # our own structured request log replaces it
            "errorlog": "-",
            "loglevel": "info",
            "on_starting": _on_starting,
            "child_exit": _child_exit,
            "post_worker_init": _post_worker_init,
            # gunicorn 25.1+ opens a control socket at one fixed path per user: every
            # instance would fight over it, and it can resize or stop the server.
            "control_socket_disable": True,
        }
    ).run()
