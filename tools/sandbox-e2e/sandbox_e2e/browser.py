"""Debian's Chromium through Playwright: loopback only, every call to the service recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost"}


@dataclass
class Exchange:
    """One call the Sandbox made to a CDS service, as the browser saw it."""

    method: str
    path: str
    authorization: str | None
    body: Any
    status: int
    response: Any

    @property
    def hook(self) -> str | None:
        return self.body.get("hook") if isinstance(self.body, dict) else None


@dataclass
class Traffic:
    service_base: str
    exchanges: list[Exchange] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # non-loopback URLs the page asked for
    page_errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return self.exchanges[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.exchanges)

    def wait_for(self, page: Any, mark: int, match: Callable[[Exchange], bool],
                 timeout: float = 20.0) -> Exchange:
        """The first exchange after `mark` that matches, pumping the page's events."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for exchange in self.since(mark):
                if match(exchange):
                    return exchange
            page.wait_for_timeout(100)
        seen = [(e.method, e.path, e.status) for e in self.since(mark)]
        raise TimeoutError(f"no matching call to the service within {timeout:.0f} s; saw {seen}")


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def watch(page: Any, traffic: Traffic) -> None:
    """Record each finished call to the service (preflights excluded)."""

    def on_response(response: Any) -> None:
        request = response.request
        if not request.url.startswith(traffic.service_base + "/cds-services"):
            return
        if request.method not in ("GET", "POST"):
            return
        try:
            answer = _json_or_text(response.text())
        except Exception:  # the page navigated away before the body was read
            answer = None
        exchange = Exchange(request.method, urlsplit(request.url).path,
                            request.headers.get("authorization"),
                            _json_or_text(request.post_data), response.status, answer)
        with traffic._lock:
            traffic.exchanges.append(exchange)

    page.on("response", on_response)
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def loopback_context(browser: Any, traffic: Traffic) -> Any:
    """A fresh profile (no stored Sandbox settings) whose requests never leave loopback:
    the Sandbox's built-in defaults (its public services and FHIR server) are refused."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})

    def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in LOOPBACK:
            route.continue_()
        else:
            traffic.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    return context
