"""The card preview page in a real headless Chromium (Debian's package, driven by Playwright)
against a real `baclofen-cds serve`: scenarios, rendered cards, feedback that lands in the DB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

from cds.storage import Store
from cds.suggestion_clients import apply_suggestion

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
expect = None  # playwright.sync_api.expect, bound once Playwright is known to be installed
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TAPER_SCENARIO = "01-oral-stop-long-term"
CUT_SCENARIO = "03-oral-large-cut"
EMERGENCY_SCENARIO = "13-fever-fahrenheit-after-stop"
SANDBOX_CUT_SCENARIO = "sandbox-order-sign-cut"  # the Sandbox's draft: 20 mg once a day


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed")
    global expect
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(live_server):
    return live_server()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def run_scenario(page, name: str):
    page.get_by_label("Scenario").select_option(name)
    # Locator assertions, not wait_for_function: the page's CSP forbids eval.
    expect(page.locator("#request-json")).to_have_value(re.compile("hookInstance"))
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    return page.locator("article.card")


def feedback_rows(server) -> list[dict]:
    url = server.env["CDS_DATABASE_URL"]
    return Store(url).feedback_rows()


def test_page_is_labelled_and_keyboard_reachable(page):
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => el.labels.length === 0).map((el) => el.id)""")
    assert unlabelled == []
    assert page.locator("main h2").all_inner_texts() == ["Request", "Cards", "Raw exchange"]
    page.get_by_label("Scenario").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "service"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "keyboard focus must be visible"


def test_supervised_taper_card_accept_a_suggestion(page, server, output_dir):
    cards = run_scenario(page, TAPER_SCENARIO)
    assert cards.count() == 1
    card = cards.first
    assert "card-warning" in card.get_attribute("class")
    assert card.locator(".indicator-label").inner_text().lower() == "warning"
    assert card.locator(".indicator-icon").inner_text() == "!"
    assert "taper under supervision" in card.locator("h3").inner_text()
    # Markdown detail rendered, not shown raw.
    detail = card.locator(".detail")
    assert detail.locator("strong").count() >= 1 and detail.locator("li").count() >= 3
    assert "**" not in detail.inner_text()
    assert card.locator(".source a").get_attribute("href").startswith("https://")
    assert card.locator(".links a").count() >= 1
    assert page.locator("#raw-response").inner_text().lstrip().startswith("{")

    buttons = card.locator("button.suggestion-button")
    assert buttons.count() >= 1, "the taper card should offer its taper as a suggestion"
    # The proposed taper schedule is a GFM table in the detail, rendered as a real table.
    table = detail.locator("table")
    assert table.count() == 1
    assert table.locator("thead th").count() >= 3 and table.locator("tbody tr").count() >= 2
    page.screenshot(path=str(output_dir / "preview-taper.png"), full_page=True)
    suggestion_uuid = buttons.first.get_attribute("data-suggestion-uuid")
    card_uuid = card.get_attribute("data-card-uuid")
    buttons.first.click()
    expect(card.locator(".card-status")).to_contain_text("Accepted")
    assert buttons.first.is_disabled()

    rows = feedback_rows(server)
    assert [(r["card_uuid"], r["outcome"]) for r in rows] == [(card_uuid, "accepted")]
    assert suggestion_uuid in rows[0]["accepted_suggestions"]


@pytest.mark.parametrize("client", ["full", "sandbox"])
@pytest.mark.parametrize("which", ["replace-with-taper", "keep-current-dose"])
def test_accepting_applies_the_suggestion_as_the_chosen_client_and_ends_the_warning(
        page, client, which):
    """The page's Accept does what cds.suggestion_clients does (the code the contract tests
    and sandbox-e2e use, through POST /preview/apply); sending the request again is the
    next order-sign, and it raises no new card."""
    page.get_by_label("Accepting a suggestion applies it as").select_option(client)
    cards = run_scenario(page, SANDBOX_CUT_SCENARIO)
    sent = json.loads(page.locator("#raw-request").inner_text())
    (card,) = json.loads(page.locator("#raw-response").inner_text())["cards"]
    (suggestion,) = [s for s in card["suggestions"]
                     if s["extension"]["org.baclofen-cds"]["suggestion"] == which]
    cards.first.locator(f"button[data-suggestion-uuid='{suggestion['uuid']}']").click()
    expect(cards.first.locator(".card-status")).to_contain_text("send it again")

    now = json.loads(page.locator("#request-json").input_value())
    drafts = [e["resource"] for e in sent["context"]["draftOrders"]["entry"]]
    assert [e["resource"] for e in now["context"]["draftOrders"]["entry"]] == \
        apply_suggestion(drafts, suggestion, client)
    assert now["hookInstance"] != sent["hookInstance"]
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#cards")).to_contain_text("The service returned no cards.")


def test_emergency_card_and_dismissal_with_a_reason(page, server, output_dir):
    cards = run_scenario(page, EMERGENCY_SCENARIO)
    card = cards.first
    assert "card-critical" in card.get_attribute("class")
    assert card.locator(".indicator-label").inner_text().lower() == "critical"
    assert "evaluate now" in card.locator("h3").inner_text()
    page.screenshot(path=str(output_dir / "preview-emergency.png"), full_page=True)

    # Dismiss a taper card with one of its override reasons, using the keyboard.
    cards = run_scenario(page, CUT_SCENARIO)
    card = cards.first
    card_uuid = card.get_attribute("data-card-uuid")
    reason = card.get_by_label("Reason for dismissing")
    option = reason.locator("option", has_text="Taper is managed elsewhere")
    reason.select_option(option.get_attribute("value"))
    card.get_by_role("button", name="Dismiss card").focus()
    page.keyboard.press("Enter")
    expect(card.locator(".card-status")).to_contain_text("Dismissed")

    rows = feedback_rows(server)
    assert len(rows) == 1
    row = rows[0]
    assert (row["card_uuid"], row["outcome"], row["override_code"]) == (
        card_uuid, "overridden", "taper-elsewhere")


def test_markdown_renderer_escapes_card_text(page):
    html = page.evaluate("""() => renderMarkdown([
        '<img src=x onerror="window.pwned=1"> **bold** _em_',
        '[bad](javascript:alert(1)) [good](https://example.org/a?b=1&c=2)',
        '',
        '## Plan',
        '',
        '| Step | Dose |',
        '|---|--:|',
        '| 1 | 20 mg <script>window.pwned=2</script> |',
        '',
        '- one',
        '- two',
    ].join('\\n'))""")
    assert "<img" not in html and "<script" not in html
    assert "&lt;img" in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.org/a?b=1&amp;c=2"' in html
    assert "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert "<h5>Plan</h5>" in html
    assert '<th scope="col">Step</th>' in html and '<td class="align-right">' in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert page.evaluate("window.pwned") is None


def _readme_screenshot_command(server, picture: Path) -> list[str]:
    """The README's screenshot command, on this server's port, writing to `picture`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    line = next(line.strip() for line in readme.splitlines()
                if line.strip().startswith("chromium ") and "--screenshot" in line)
    words = [re.sub(r"^--screenshot=.*", f"--screenshot={picture}", w)
             .replace("http://127.0.0.1:8080", server.base_url) for w in line.split()]
    if os.geteuid() == 0:
        words.insert(1, "--no-sandbox")  # Chromium refuses to run as root without it
    return [CHROMIUM, *words[1:], *CHROMIUM_ARGS[1:]]


def test_the_page_arrives_with_its_lists_filled(server):
    page = requests.get(server.base_url + "/", timeout=10)
    assert 'value="01-oral-stop-long-term"' in page.text
    assert page.text.index("showcase") < page.text.index("probe round 1")
    assert 'value="baclofen-order-sign"' in page.text


def test_the_readme_screenshot_command_captures_filled_lists(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    picture = tmp_path / "preview.png"
    command = _readme_screenshot_command(server, picture)
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    assert picture.stat().st_size > 10_000
    # The page as that command sees it, at the same moment: the lists must be there.
    dom = subprocess.run([w if not w.startswith("--screenshot") else "--dump-dom"
                          for w in command], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'value="01-oral-stop-long-term"' in dom and 'value="baclofen-order-sign"' in dom


@pytest.mark.parametrize("path", ["/", "/static/preview.html"])
def test_no_other_page_can_frame_the_preview(browser, server, path):
    """Issue 27.4: `/static/preview.html` is the same page as `/`, and went out without its
    CSP (frame-ancestors) and nosniff; Chromium framed it from any origin."""
    context = browser.new_context()
    page = context.new_page()
    try:
        with page.expect_event("framenavigated",
                               predicate=lambda frame: frame != page.main_frame) as framed:
            page.set_content(f'<iframe src="{server.base_url}{path}"></iframe>')
        # Chromium puts its error page in a frame it refused to load.
        assert framed.value.url.startswith("chrome-error://"), framed.value.url
    finally:
        context.close()
