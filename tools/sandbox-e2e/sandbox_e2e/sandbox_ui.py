"""The Sandbox's screens as a clinician uses them (selectors from cds-hooks/sandbox src/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox_e2e.browser import Exchange, Traffic

CARD = "[class*='decision-card']"  # CardList's MUI Card (CSS-module class)
FREQUENCIES = {1: "daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"}


@dataclass
class SandboxPage:
    page: Any
    traffic: Traffic
    site_url: str
    fhir_url: str
    shots: Path

    def open(self, patient_id: str, discovery_urls: list[str]) -> Exchange:
        """Load the Sandbox on a patient with our FHIR server and CDS services, as a user
        following a shared Sandbox link would (its fhirServiceUrl, patientId and
        serviceDiscoveryURL parameters); returns the discovery call."""
        mark = self.traffic.mark()
        query = urlencode({"fhirServiceUrl": self.fhir_url, "patientId": patient_id,
                           "serviceDiscoveryURL": ",".join(discovery_urls),
                           "hook": "patient-view", "screen": "patient-view"})
        self.page.goto(f"{self.site_url}/?{query}")
        discovery = self.traffic.wait_for(
            self.page, mark, lambda e: e.method == "GET" and e.path.endswith("/cds-services"))
        self.page.get_by_text(f"ID: {patient_id}", exact=False).first.wait_for()
        self.page.locator(".MuiBackdrop-root:visible").wait_for(state="detached", timeout=20000)
        return discovery

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def view_screenshot(self, name: str) -> Path:
        """The hook view (left pane: draft form and cards), without the developer panel.
        The window is made tall enough for the whole view first: a taller view would be
        scrolled in pieces, with the Sandbox's sticky header caught in the middle."""
        path = self.shots / f"{name}.png"
        view = self.page.locator("h1").first.locator("xpath=..")
        # Back to the top of every scrolled container (clicking a suggestion scrolls).
        view.evaluate("el => { for (let n = el; n; n = n.parentElement) n.scrollTop = 0;"
                      " window.scrollTo(0, 0); }")
        size = self.page.viewport_size
        box = view.bounding_box()
        if box and size and box["y"] + box["height"] > size["height"]:
            self.page.set_viewport_size(
                {"width": size["width"], "height": int(box["y"] + box["height"]) + 40})
        try:
            view.screenshot(path=str(path))
        finally:
            if size:
                self.page.set_viewport_size(size)
        return path

    def listed_service_urls(self) -> list[str]:
        """The services in the Sandbox's "Configure CDS Services" dialog."""
        self.page.locator(".MuiToolbar-root button").last.click()
        self.page.get_by_role("menuitem", name="Configure CDS Services").click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_text("Configure CDS Services").wait_for()
        self.page.get_by_role("menu").wait_for(state="hidden")
        self.page.wait_for_timeout(500)  # let MUI's fade-in finish before a screenshot
        texts = dialog.locator("[class*='url-container']").all_inner_texts()
        return [t.strip() for t in texts]

    def close_dialog(self) -> None:
        self.page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        self.page.get_by_role("dialog").wait_for(state="detached")

    def tab(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()
        self.page.get_by_role("heading", name=name).wait_for()

    def choose_medication(self, search: str, name: str) -> None:
        self.page.locator("input[name=medication-input]").fill(search)
        self.page.get_by_role("button", name=name, exact=True).click()

    def set_dose(self, pills: int, times_a_day: int) -> None:
        amount = self.page.locator("#dosage-amount")
        amount.fill(str(pills))
        amount.press("Tab")
        self.page.locator("#dosage-frequency").click()
        self.page.get_by_role("option", name=FREQUENCIES[times_a_day], exact=True).click()
        # The menu (an MUI Popover) is removed once its fade-out is over.
        self.page.locator(".MuiPopover-root").first.wait_for(state="detached")

    def set_end_date_today(self) -> None:
        """Pick today in the End Date calendar. (Typing the date instead makes the Sandbox
        call order-select on every keystroke with "Invalid date", then years 0002, 0020,
        0202: see captured/NOTES.md.)"""
        self.page.get_by_role("button", name="Choose date").nth(1).click()
        self.page.locator(".MuiPickersDay-today").click()
        self.page.locator(".MuiPickersPopper-root").wait_for(state="detached")

    def sign(self) -> Exchange:
        mark = self.traffic.mark()
        self.page.get_by_role("button", name="Sign Order").click()
        return self.traffic.wait_for(self.page, mark, lambda e: e.hook == "order-sign")

    def cards(self) -> Any:
        return self.page.locator(CARD)

    def card_with(self, summary: str) -> Any:
        return self.cards().filter(has_text=summary).first

    def accept(self, label: str) -> Exchange:
        """Click a suggestion button; returns the feedback call it makes."""
        mark = self.traffic.mark()
        self.page.get_by_role("button", name=label, exact=True).click()
        return self.traffic.wait_for(self.page, mark, lambda e: e.path.endswith("/feedback"))

    def dismiss_with_reason(self, summary: str, reason_display: str) -> Exchange:
        mark = self.traffic.mark()
        card = self.card_with(summary)
        card.get_by_role("button", name="select dismiss reason").click()
        self.page.get_by_role("menuitem", name=f"Override: {reason_display}").click()
        return self.traffic.wait_for(self.page, mark, lambda e: e.path.endswith("/feedback"))
