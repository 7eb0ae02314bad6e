"""Regenerate the handout screenshots in docs/screenshots/ from a real `baclofen-cds serve`.

    .venv/bin/python tools/handout_screenshots.py [--out docs/screenshots]

Starts the service on 127.0.0.1 (local trial, a throwaway database), asks it for the
cards of three scenarios, opens their handout links in Debian's headless Chromium
(`apt-get install chromium`) and saves full-page screenshots. Dates are those of the day
it runs (the scenarios' dates are relative to now).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.live starts the service as the tests do

from cds.fixtures import list_fixtures, load_fixture  # noqa: E402
from tests.support.handout import handout_links  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SHOTS = (  # (file name, scenario, language)
    ("handout-taper-en.png", "02-oral-stop-high-dose-ms-sci", "en"),
    ("handout-taper-es.png", "02-oral-stop-high-dose-ms-sci", "es"),
    ("handout-pump-en.png", "probe2-p14-02-refill-overdue-no-signs", "en"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp}/s.db"})
        server.start(Path(tmp) / "server.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 900, "height": 800})
                for name, stem, language in SHOTS:
                    page.goto(_link(server, stem, language))
                    page.wait_for_load_state("load")
                    path = Path(args.out) / name
                    page.screenshot(path=str(path), full_page=True)
                    print(path)
                browser.close()
        finally:
            server.stop()
    return 0


def _link(server: LiveServer, stem: str, language: str) -> str:
    fixture = load_fixture(next(p for p in list_fixtures() if p.stem == stem), datetime.now(UTC))
    response = requests.post(f"{server.base_url}/cds-services/{fixture.service}",
                             json=fixture.request, timeout=30)
    for card in response.json()["cards"]:
        for link in handout_links(card):
            if link["url"].endswith(f"lang={language}"):
                return link["url"]
    raise SystemExit(f"{stem} links no {language} handout")


if __name__ == "__main__":
    sys.exit(main())
