"""Reading a card's taper plan and a handout page the way a person would, day by day."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit


def handout_links(card: dict) -> list[dict]:
    return [link for link in card.get("links", []) if "/handout/" in link["url"]]


def local_path(url: str) -> str:
    """The path and query of a link, for a test client or a live server."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


# ---------------------------------------------------------------- the card


def card_table_daily_mg(card: dict) -> dict[date, float] | None:
    """Daily totals of the card's taper table (the markdown the clinician reads), from the
    first step through 7 days after the stop or into the dose that goes on."""
    rows = [line for line in card["detail"].splitlines() if line.startswith("| ")]
    if not rows or not rows[0].startswith("| Step |"):
        return None
    daily: dict[date, float] = {}
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        step, start, end, total = cells[0], cells[1], cells[2], cells[-1]
        mg = float(total.removesuffix(" mg"))
        first = date.fromisoformat(start)
        last = date.fromisoformat(end) if end not in ("", "ongoing") else first + timedelta(
            days=6)
        assert step.isdigit() or step in ("stop", "new dose"), row
        day = first
        while day <= last:
            daily[day] = mg
            day += timedelta(days=1)
    return daily


def card_order_doses(card: dict) -> dict[date, list[float]] | None:
    """Each day's doses (mg or mL, as ordered) from the taper MedicationRequest the card's
    recommended suggestion would write into the EHR."""
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            resource = action.get("resource") or {}
            if resource.get("resourceType") != "MedicationRequest":
                continue
            days: dict[date, list[float]] = {}
            for dosage in resource["dosageInstruction"]:
                repeat = dosage["timing"]["repeat"]
                bounds = repeat["boundsPeriod"]
                first = date.fromisoformat(bounds["start"])
                last = date.fromisoformat(bounds["end"]) if "end" in bounds else \
                    first + timedelta(days=6)
                quantity = dosage["doseAndRate"][0]["doseQuantity"]["value"]
                day = first
                while day <= last:
                    days.setdefault(day, []).extend([quantity] * repeat["frequency"])
                    day += timedelta(days=1)
            return days
    return None


def card_refill_date(card: dict) -> date | None:
    """The date the card says the reservoir reaches its alarm volume, if it says one."""
    match = re.search(r"alarm volume expected [^(]*\((\d{4}-\d{2}-\d{2}) ", card["detail"])
    return date.fromisoformat(match.group(1)) if match else None


# ---------------------------------------------------------------- the handout


@dataclass
class HandoutRow:
    start: date
    end: date | None
    days: int
    range_text: str = ""
    cells: list[tuple[str, float | None]] = field(default_factory=list)  # (text, mg)
    total_mg: float = 0.0
    ticks: int = 0


@dataclass
class HandoutPage:
    lang: str = ""
    rows: list[HandoutRow] = field(default_factory=list)
    medicine: str = ""
    refill: date | None = None
    refill_blank: bool = False
    prose: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)  # src/href that leave the service
    inline_style: bool = False
    inline_script: bool = False


class _Reader(HTMLParser):
    """Collects the calendar rows, the medicine line, the refill date and every piece of
    prose; each element opened with a purpose gathers the text inside it until it ends."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = HandoutPage()
        self.stack: list[tuple[str, list[tuple[str, list[str]]]]] = []
        self.active: list[list[str]] = []
        self.cell_mg: float | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "html":
            self.page.lang = a.get("lang", "")
        if "style" in a or tag == "style":
            self.page.inline_style = True
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value.startswith(("http:", "https:", "//")) and tag != "a":
                self.page.remote.append(value)
        if tag == "script" and not a.get("src"):
            self.page.inline_script = True
        if tag == "tr" and "data-start" in a:
            end = a.get("data-end") or ""
            self.page.rows.append(HandoutRow(date.fromisoformat(a["data-start"]),
                                             date.fromisoformat(end) if end else None,
                                             int(a.get("data-days") or 0)))
        if tag == "td" and self.page.rows and "total" in classes:
            self.page.rows[-1].total_mg = float(a["data-mg"])
        if tag == "td" and "dose" in classes:
            mg = a.get("data-mg") or ""
            self.cell_mg = float(mg) if mg else None
        if tag == "span" and "tick" in classes and self.page.rows:
            self.page.rows[-1].ticks += 1
        if tag == "time" and a.get("datetime"):
            self.page.refill = date.fromisoformat(a["datetime"])
        purposes = []
        if tag == "td" and "dose" in classes:
            purposes.append("dose")
        for name in ("range", "medicine", "prose"):
            if name in classes:
                purposes.append(name)
        captures = [(purpose, []) for purpose in purposes]
        self.active += [buffer for _purpose, buffer in captures]
        if tag not in ("br", "img", "meta", "link", "input"):
            self.stack.append((tag, captures))

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, captures = self.stack.pop()
            for purpose, buffer in captures:
                self.active.remove(buffer)
                self._finish(purpose, " ".join("".join(buffer).split()))
            if open_tag == tag:
                break

    def _finish(self, purpose: str, text: str) -> None:
        if purpose == "dose":
            self.page.rows[-1].cells.append((text, self.cell_mg))
        elif purpose == "range":
            self.page.rows[-1].range_text = text
        elif purpose == "medicine":
            self.page.medicine = text
        else:
            self.page.prose.append(text)

    def handle_data(self, data):
        for buffer in self.active:
            buffer.append(data)
        if data.strip():
            self.page.text.append(data.strip())


def read_handout(html: str) -> HandoutPage:
    reader = _Reader()
    reader.feed(html)
    page = reader.page
    page.refill_blank = page.refill is None and any(
        "refill" in t.lower() or "rellen" in t.lower() for t in page.text)
    return page


def handout_doses(page: HandoutPage) -> dict[date, list[float]]:
    """Each day's doses in mg, as the handout's calendar gives them, through 7 days after
    the stop or into the dose that goes on."""
    days: dict[date, list[float]] = {}
    for row in page.rows:
        last = row.end or row.start + timedelta(days=6)
        doses = [mg for _text, mg in row.cells if mg is not None]
        day = row.start
        while day <= last:
            days[day] = doses
            day += timedelta(days=1)
    return days


_TABLET = re.compile(r"^(\d+) (?:tablet|tablets|packet|packets) of (\d+(?:\.\d+)?) mg$")
_ML = re.compile(r"^(\d+(?:\.\d+)?) mL$")
_MG = re.compile(r"^(\d+(?:\.\d+)?) mg$")
_CONCENTRATION = re.compile(r"(\d+(?:\.\d+)?) mg (?:in each|en cada) 1 mL")


def mg_as_read(text: str, medicine: str) -> float:
    """What an English reader takes from a dose cell: tablets add up, mL times the
    concentration the sheet names, or plain mg."""
    total = 0.0
    for part in text.split(" and "):
        if match := _TABLET.match(part):
            total += int(match.group(1)) * float(match.group(2))
        elif match := _ML.match(part):
            concentration = _CONCENTRATION.search(medicine)
            assert concentration, f"a dose in mL but no concentration on the sheet: {medicine}"
            total += float(match.group(1)) * float(concentration.group(1))
        elif match := _MG.match(part):
            total += float(match.group(1))
        else:
            raise AssertionError(f"cannot read the dose {text!r}")
    return round(total, 3)


def english_day(day: date) -> str:
    """'December 4' as an English reader expects it (independent of the handout code)."""
    return f"{datetime(day.year, day.month, day.day):%B} {day.day}"
