"""The handout page: a plan and one language's words become HTML (no Flask needed).

The template (cds/templates/handout.html) is rendered by Jinja2 with autoescaping, so no
text can become markup; its styles and the print button's script are files under
cds/static/, which the page's Content-Security-Policy allows (nothing inline, nothing
remote). Everything the patient reads is built here from the plan and rules/handout/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from cds.handout.link import OpenedLink
from cds.handout.plan import Dose, Step, TaperCalendar
from cds.handout.texts import FORMATTER, HandoutCatalog, LanguageTexts
from cds.knowledge import Knowledge
from cds.knowledge.model import Source
from cds.taper.products import format_number


@dataclass(frozen=True)
class SiteContact:
    """Whom to call, as the site configured it (else the page leaves lines to fill)."""

    care_team: str = ""
    emergency_number: str = "911"


@dataclass
class CalendarRow:
    start: date
    end: date | None
    dates_text: str
    days_text: str
    days: int  # tick boxes (0 for a dose that goes on)
    cells: list[str]  # one per column; the "none" mark where no dose is taken
    cell_mg: list[float | None]
    total_text: str
    total_mg: float


@dataclass
class PageView:
    language: LanguageTexts
    kind: str
    title: str
    labels: Mapping[str, Any]
    medicine: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[CalendarRow] = field(default_factory=list)
    end_text: str = ""
    rules: list[str] = field(default_factory=list)
    intro: list[str] = field(default_factory=list)
    call_today: list[str] = field(default_factory=list)
    emergency: list[str] = field(default_factory=list)
    refill_text: str = ""
    refill_date: date | None = None
    refill_passed: bool = False
    sources: list[tuple[str, str | None]] = field(default_factory=list)  # (text, url)
    made_text: str = ""
    contact: SiteContact = field(default_factory=SiteContact)
    emergency_heading: str = ""


def fill(template: str, **values: Any) -> str:
    """A template of rules/handout/ with its named values (no formats, no attributes)."""
    return "".join(literal + ("" if name is None else str(values.get(name, "")))
                   for literal, name, _spec, _conversion in FORMATTER.parse(template))


class HandoutPage:
    def __init__(self, catalog: HandoutCatalog, knowledge: Knowledge,
                 contact: SiteContact) -> None:
        self.catalog = catalog
        self.knowledge = knowledge
        self.contact = contact

    def render(self, link: OpenedLink, today: date | None = None) -> str:
        view = self.view(link, today or datetime.now(UTC).date())
        return _template("handout.html").render(view=view)

    def render_error(self, language: str | None, reason: str) -> str:
        texts = self.catalog.language(language or "") or \
            next(iter(self.catalog.languages.values()))
        return _template("handout_error.html").render(
            lang=texts.code, title=texts["errors"]["title"], message=texts["errors"][reason])

    # ------------------------------------------------------------ the view

    def view(self, link: OpenedLink, today: date) -> PageView:
        texts = self.catalog.language(link.language)
        if texts is None:
            raise KeyError(link.language)
        plan = link.plan
        labels = texts["labels"]
        view = PageView(language=texts, kind=plan.kind, title=labels[f"title_{plan.kind}"],
                        labels=labels, contact=self.contact,
                        emergency_heading=fill(labels["emergency"],
                                               emergency_number=self.contact.emergency_number))
        used: list[Source] = []

        def say(statement: str, **values: Any) -> str:
            used.append(self.catalog.statement_sources[statement])
            return fill(texts["statements"][statement], **values)

        if plan.taper is not None:
            self._taper(view, plan.taper, texts, say)
        if plan.pump is not None:
            refill = plan.pump.refill_by
            view.refill_date = refill
            view.refill_passed = refill is not None and refill < today
            view.refill_text = self.day(texts, refill, with_year=True) if refill else ""
            view.intro = [say("pump_empty"), say("pump_refill"), say("pump_alarm"),
                          say("pump_oral_not_enough")]
        signs = self.catalog.signs[plan.kind]
        fever_f = format_number(self.catalog.fever_threshold_celsius * 9 / 5 + 32)
        sign_values = {"fever_c": self.number(texts, self.catalog.fever_threshold_celsius),
                       "fever_f": self.number(texts, float(fever_f))}
        view.call_today = [say("signs_call_today")] + [
            fill(texts["signs"][key], **sign_values) for key in signs.call_today]
        view.emergency = [say("signs_emergency")] + [
            fill(texts["signs"][key], **sign_values) for key in signs.emergency]
        view.emergency.append(say("tell_emergency_team_pump" if plan.kind == "pump"
                                  else "tell_emergency_team"))
        used += [self.catalog.sign_sources[k] for k in (*signs.call_today, *signs.emergency)]
        view.sources = self._sources(used, texts)
        # No expiry date on paper: the sheet outlives its link (helper read-through).
        view.made_text = fill(labels["made"],
                              date=self.day(texts, _utc_date(link.issued_at), with_year=True))
        return view

    def _taper(self, view: PageView, taper: TaperCalendar, texts: LanguageTexts, say) -> None:
        concentration = self.number(texts, taper.concentration_mg_per_ml or 0)
        # Which tablets or packets to have at home, before the first day (read-through ask).
        strengths = [f"{self.number(texts, s)} mg" for s in sorted(
            {s for step in taper.steps for dose in step.doses for s, _n in dose.units},
            reverse=True)]
        listed = ", ".join(strengths[:-1]) + texts["doses"]["join"] + strengths[-1] \
            if len(strengths) > 1 else "".join(strengths)
        view.medicine = fill(texts["medicine"][taper.form], concentration=concentration,
                             strengths=listed)
        slots = self._columns(taper)
        view.columns = [texts["times_of_day"][slot] for slot in slots]
        view.rows = [self._row(step, slots, taper, texts) for step in taper.steps]
        if taper.stop is not None:
            view.rows.append(CalendarRow(
                start=taper.stop, end=None,
                dates_text=fill(texts["labels"]["from_on"], start=self.day(texts, taper.stop)),
                days_text="", days=0, cells=[texts["labels"]["no_dose"]] * len(slots),
                cell_mg=[None] * len(slots),
                total_text=self.total_text(texts, taper, 0.0),
                total_mg=0.0))
            view.end_text = say("taper_end_stop", date=self.day(texts, taper.stop,
                                                                 with_year=True))
        else:
            last = taper.steps[-1]
            view.end_text = say("taper_end_continue",
                                date=self.day(texts, last.start, with_year=True),
                                dose=self.total_text(texts, taper, last.daily_mg))
        view.intro = [say("taper_why")]
        view.rules = [say("taper_no_early_stop"), say("taper_no_double"),
                      say("taper_no_changes")]
        if taper.form == "tablet":
            view.rules.append(say("tablets_whole"))
        if taper.form in ("solution", "suspension"):
            view.rules.append(say("measure_liquid"))
        if taper.form == "mg":
            view.rules.append(say("unknown_form"))
        if taper.via_tube:
            view.rules.insert(0, say("by_tube"))

    def _columns(self, taper: TaperCalendar) -> list[str]:
        order = [slot for count in sorted(self.catalog.times_of_day, reverse=True)
                 for slot in self.catalog.times_of_day[count]]
        used = {slot for step in taper.steps
                for slot in self.catalog.times_of_day[len(step.doses)]}
        return [slot for slot in dict.fromkeys(order) if slot in used]

    def _row(self, step: Step, slots: list[str], taper: TaperCalendar,
             texts: LanguageTexts) -> CalendarRow:
        labels = texts["labels"]
        by_slot = dict(zip(self.catalog.times_of_day[len(step.doses)], step.doses, strict=True))
        cells, cell_mg = [], []
        for slot in slots:
            dose = by_slot.get(slot)
            cells.append(self.dose_text(texts, taper, dose) if dose else labels["no_dose"])
            cell_mg.append(dose.mg if dose else None)
        if step.end is None:
            dates_text = fill(labels["from_on"], start=self.day(texts, step.start))
            days_text = ""
        else:
            dates_text = fill(labels["from_to"], start=self.day(texts, step.start),
                              end=self.day(texts, step.end))
            plural = labels["days"]["one" if step.days == 1 else "other"]
            days_text = fill(plural, count=step.days)
        return CalendarRow(step.start, step.end, dates_text, days_text, step.days or 0, cells,
                           cell_mg, self.total_text(texts, taper, step.daily_mg), step.daily_mg)

    def total_text(self, texts: LanguageTexts, taper: TaperCalendar, mg: float) -> str:
        """A day's total; for a liquid in mL first (what is measured), then mg."""
        concentration = taper.concentration_mg_per_ml
        if taper.form in ("solution", "suspension") and concentration and mg:
            return fill(texts["doses"]["total_liquid"], mg=self.number(texts, mg),
                        ml=self.number(texts, round(mg / concentration, 3)))
        return fill(texts["doses"]["total"], mg=self.number(texts, mg))

    def dose_text(self, texts: LanguageTexts, taper: TaperCalendar, dose: Dose) -> str:
        words = texts["doses"]
        if taper.form in ("tablet", "granules"):
            return words["join"].join(
                fill(words[taper.form]["one" if count == 1 else "other"], count=count,
                     strength=self.number(texts, strength))
                for strength, count in dose.units)
        if taper.form in ("solution", "suspension"):
            return fill(words["liquid"], ml=self.number(texts, dose.ml or 0))
        return fill(words["mg"], mg=self.number(texts, dose.mg))

    @staticmethod
    def number(texts: LanguageTexts, value: float) -> str:
        return format_number(value).replace(".", texts.decimal_separator)

    @staticmethod
    def day(texts: LanguageTexts, day: date, with_year: bool = False) -> str:
        dates = texts["dates"]
        return fill(dates["day_with_year" if with_year else "day"],
                    weekday=dates["weekdays"][day.weekday()], month=dates["months"][day.month - 1],
                    day=day.day, year=day.year)

    def _sources(self, used: list[Source], texts: LanguageTexts) -> list[tuple[str, str | None]]:
        """Each label cited, with the sections it supports and its address; the local-policy
        advice as one line that says where its reasons are (they would crowd the page)."""
        sections: dict[str, dict[str, None]] = {}
        for source in used:
            if source.ref is not None:
                # The section's name; the detail in brackets stays in rules/handout/.
                name = (source.section or "").split(" (")[0].strip()
                sections.setdefault(source.ref, {})[name] = None
        out: list[tuple[str, str | None]] = []
        for ref, names in sections.items():
            reference = self.knowledge.references[ref]
            # "5.1" is already said by "5.1 Adverse Reactions from Abrupt Withdrawal".
            shown = [n for n in names if n and not any(o != n and o.startswith(n + " ")
                                                         for o in names)]
            out.append((f"{reference.short}: {'; '.join(shown)}", reference.url))
        if any(source.policy is not None for source in used):
            out.append((texts["labels"]["local_policy"], None))
        return out


def _utc_date(seconds: float) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("cds", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def _template(name: str):
    return _environment().get_template(name)
