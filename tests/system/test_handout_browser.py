"""Patient handouts in a real headless Chromium (Debian's, through Playwright) against a
real `baclofen-cds serve`: the page as a patient sees it, its printed PDF on A4 and Letter
(1 or 2 pages), those pages rasterised by pdftoppm and looked at, and the link from the
preview page's card."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from cds.fixtures import list_fixtures, load_fixture
from tests.support.handout import handout_links

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# The longest plan of the fixtures, each form, a cut, a tube, and both kinds of pump sheet.
SCENARIOS = [
    "taper-above-labelled-max",
    "02-oral-stop-high-dose-ms-sci",
    "03-oral-large-cut",
    "15-contained-suspension-5mg-per-ml",
    "probe3-47-granules-stop-taper-in-granules",
    "probe1-p13-18-npo-dysphagia-ng-tube-stop",
    "taper-unknown-product",
    "probe2-p14-02-refill-overdue-no-signs",
    "probe1-p14-13-device-alert-no-volume",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.support.live import LiveServer

    tmp = tmp_path_factory.mktemp("handout-browser")
    live = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'h.db'}"})
    live.start(tmp / "server.log")
    yield live
    live.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    # A CSP refusal (an inline style, a remote font) is logged as a console error.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda r: problems.append(f"left the service: {r.url}")
            if not r.url.startswith("http://127.0.0.1") else None)
    page.problems = problems  # a test that expects a refusal takes it out
    yield page
    context.close()
    assert problems == [], problems


def links_of(server, stem: str) -> list[dict]:
    fixture = load_fixture(next(p for p in list_fixtures() if p.stem == stem), datetime.now(UTC))
    response = requests.post(f"{server.base_url}/cds-services/{fixture.service}",
                             json=fixture.request, timeout=30)
    links = [link for card in response.json()["cards"] for link in handout_links(card)]
    assert [link["url"].rsplit("lang=", 1)[1] for link in links] == ["en", "es"], stem
    return links


def ink(image) -> float:
    """Share of pixels that are not near-white."""
    gray = image.convert("L")
    histogram = gray.histogram()
    return sum(histogram[:200]) / (gray.width * gray.height)


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))


@pytest.mark.parametrize("stem", SCENARIOS)
def test_handout_on_screen_and_printed(browser, page, server, output_dir, tmp_path, stem):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow is a test extra")
    if not shutil.which("pdftoppm") or not shutil.which("pdfinfo"):
        pytest.skip("poppler-utils is not installed (apt-get install poppler-utils)")
    for link in links_of(server, stem):
        language = link["url"].rsplit("lang=", 1)[1]
        response = page.goto(link["url"])
        assert response.status == 200
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("h1").is_visible()
        # The stylesheet applied (served from /static under the CSP): the emergency box
        # has its thick border and nothing runs off the side of the window.
        border = page.locator(".emergency").evaluate("e => getComputedStyle(e).borderTopWidth")
        assert border == "3px"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1000
        assert page.get_by_role("button").count() == 1  # print / save as PDF
        kind = "taper" if page.locator("table").count() else "pump"
        if kind == "taper":
            rows = page.locator("tbody tr")
            assert rows.count() >= 2
            first_row = rows.first.bounding_box()
            assert first_row["width"] > 600 and first_row["height"] > 20
        shot = output_dir / f"handout-{stem}-{language}.png"
        page.screenshot(path=str(shot), full_page=True)
        with image_module.open(shot) as image:
            assert image.width == 1000 and image.height > 900
            assert 0.02 < ink(image) < 0.5, "the page is blank, or a solid block"
        for paper in ("A4", "Letter"):
            pdf = tmp_path / f"{stem}-{language}-{paper}.pdf"
            page.pdf(path=str(pdf), format=paper, print_background=True)
            assert 1 <= pdf_pages(pdf) <= 2, (stem, language, paper)
            text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                                  text=True, check=True).stdout
            assert page.locator("h1").inner_text() in " ".join(text.split())
            assert "PDF" not in text.split("\n")[0], "the print button is screen-only"
            prefix = tmp_path / f"{stem}-{language}-{paper}"
            subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(prefix)],
                           check=True)
            rasters = sorted(tmp_path.glob(f"{prefix.name}-*.png"))
            assert len(rasters) == pdf_pages(pdf)
            with image_module.open(rasters[0]) as first:
                width_in = first.width / 40
                assert abs(width_in - (8.27 if paper == "A4" else 8.5)) < 0.1
                assert ink(first) > 0.03, "the first printed page is blank"
                # The title is at the top: ink in the top tenth of the page.
                top = first.crop((0, 0, first.width, first.height // 10))
                assert ink(top) > 0.01
            if paper == "A4":
                shutil.copy(rasters[0], output_dir / f"handout-{stem}-{language}-print.png")


def test_preview_page_card_links_its_handout(browser, page, server):
    expect = pytest.importorskip("playwright.sync_api").expect
    page.goto(server.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Scenario").select_option("01-oral-stop-long-term")
    expect(page.locator("#request-json")).to_have_value(re.compile("hookInstance"))
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    links = page.locator("article.card .links a", has_text="Patient handout")
    assert links.count() == 1
    assert links.first.get_attribute("href").startswith(server.base_url + "/handout/")
    with page.context.expect_page() as opened:
        links.first.click()
    handout = opened.value
    handout.wait_for_load_state("load")
    assert handout.locator("h1").inner_text() == "Your baclofen plan: lower the dose slowly"
    assert page.locator("article.card .links a", has_text="Hoja para el paciente").count() == 1


def test_expired_or_changed_link_page_in_the_browser(page, server):
    url = links_of(server, "01-oral-stop-long-term")[0]["url"]
    response = page.goto(url.replace("/handout/", "/handout/x"))
    assert response.status == 400
    page.problems.remove("Failed to load resource: the server responded with a status of "
                         "400 (BAD REQUEST)")
    assert page.locator("h1").inner_text() == "This handout cannot be shown"
    font = page.locator("body").evaluate("e => getComputedStyle(e).fontFamily")
    assert "DejaVu Sans" in font  # the stylesheet loaded on the error page too
